"""Policy checks that gate searching and indexing: roles, purposes, minors, opt-outs."""
