"""``securecalc bench``: the same statistics on MPC, CKKS and in plaintext, side by side."""
