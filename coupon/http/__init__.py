"""What only HTTP needs: admission, guards and token checks, request parsing, the envelope, errors, OpenAPI."""
