"""Flows that span apps, each called from here only: removing a device (its records, its
envelope queue, the events), creating or re-creating an account with its primary device,
and the periodic expiry of devices.

The apps sit in layers, web below accounts below devices below messaging; a module of an app
imports only its own layer and those below (web imports no other app). A flow that needs a higher app from a lower one lives
here, above them all, so module-level imports suffice. Only views, consumers and management
commands import flows (tests/test_layers.py checks both rules).
"""
