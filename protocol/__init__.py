"""Parley protocol: pure Python (PyNaCl), no Django, no I/O."""
