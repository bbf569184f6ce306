"""A tamper-evident record of what each party did: hash-chained, fsync'ed, signed heads."""
