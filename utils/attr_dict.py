"""A dict whose keys are also attributes (``cfg.DATASET.GTAV_DIR``)."""


class AttrDict(dict):
    """Dictionary with attribute access; nested plain dicts become ``AttrDict`` too.

    Missing attributes raise ``AttributeError`` (not ``KeyError``) so that ``hasattr`` and
    ``getattr(obj, name, default)`` behave as for any object.
    """

    def __init__(self, *args, **kwargs):
        super().__init__()
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __setitem__(self, key, value):
        if isinstance(value, dict) and not isinstance(value, AttrDict):
            value = AttrDict(value)
        super().__setitem__(key, value)

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no key {name!r}") from None

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None
