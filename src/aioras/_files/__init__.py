"""File writes below every other layer: bytes written whole, errors typed, nothing left behind."""
