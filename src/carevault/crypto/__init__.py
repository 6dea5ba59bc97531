"""Keys and ciphers: the key store, envelope encryption, keyed hashes, shredding."""
