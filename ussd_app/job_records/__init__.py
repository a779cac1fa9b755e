"""Job-offer records kept before departure, their scans, and lost-contact reports."""
