"""USSD: Africa's Talking hops in, engine screens out, sessions replayed from the resent text."""
