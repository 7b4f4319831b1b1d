"""The `yinxin` command: a thin click layer over the pki, seal and docflow APIs."""
