"""Imports every module that defines tables, so `Base.metadata` knows all of them."""

import noticeboard.store.tables  # noqa: F401
import publishers.newsletter.tables  # noqa: F401
