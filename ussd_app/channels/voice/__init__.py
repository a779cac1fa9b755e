"""Voice: calls over the menu engine, recordings, missed-call call-backs, TwiML and AT XML."""
