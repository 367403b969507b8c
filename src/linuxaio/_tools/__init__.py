"""The command line's tools (bench) and the helpers benchmarks/ shares with it.

pagecache.py and sizes.py import only the standard library, never linuxaio:
benchmarks/common.py loads them by path, so that an A/B run of an older build
(whose package has no _tools) still finds them."""
