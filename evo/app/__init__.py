"""The application shell: command line, progress display, export, comparison and settings.

It wires the core (``evo``) to the service (``workers``, ``storage``, ``api``); the core never
imports it.
"""
