"""Personal data kept safe: pseudonyms, sealed text, keys and their rotation, retention."""
