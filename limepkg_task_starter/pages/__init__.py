"""The Task starter's pages, one module per page or tab: request handling and rendering only.

Changes go through ``services``, reads through ``selectors``; the permission policy lives in
``permissions``. The older pages are still in ``views``.
"""
