"""The recruitment-agency check: the registry file, its index, and what a caller is told.

agency.py    an agency, and how names and licence numbers compare
check.py     the file check of content/agencies.csv (file:line problems)
index.py     the in-memory fuzzy name index
registry.py  the registry being served: load with a tree, search, the agency_search service
render.py    the text a caller reads about what was found
"""
