"""Accounts and what hangs off them: keys, pools state, model catalogs, usage, proxy export."""
