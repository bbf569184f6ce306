"""The untrusted CKKS compute node: it adds ciphertexts and never holds a key that decrypts."""
