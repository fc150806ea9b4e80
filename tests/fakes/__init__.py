"""Functions that lay out small fake inputs on disk for the tests."""
