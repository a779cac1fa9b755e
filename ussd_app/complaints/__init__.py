"""Complaints: filing, following by reference, operators' actions, erasure.

service.py is the entry (``Complaints``); see its docstring for the modules it
combines. actions.py gives the flows' complaint actions (file, status, erase).
"""
