"""What the validation modules share."""


class _Broken:
    """Placeholder for a document that exists but failed the schema: references to it stay quiet."""


BROKEN = _Broken()
