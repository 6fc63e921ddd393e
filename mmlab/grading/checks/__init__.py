"""The course's checks, one module per exercise notebook, each registering its checks by id.

Every module in this package is imported when a check is first looked up
(``mmlab.grading.registry.load_checks``), so adding a module here is all it takes to make
its checks available to ``check(...)`` in a notebook, to ``mmlab build`` and to the grader.
Folders named in ``MMLAB_CHECK_PATH`` are loaded the same way, for checks kept with a
course rather than in the package.
"""
