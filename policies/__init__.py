"""The default policies shipped with yinxin, as package data.

Certificate profiles (``profiles/``), document routes (``routes/``), the password policy
(``passwords.yaml``) and an example organisation (``examples/``).  Found through
`importlib.resources`, so they are there in a wheel as in a checkout; ``YINXIN_POLICY_DIR`` or
``policy_dir:`` in a home's ``config.yaml`` points yinxin at an edited copy, which
``yinxin policies export DIR`` writes.
"""
