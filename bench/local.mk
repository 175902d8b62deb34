# bench: files added to the build by this folder
EXTRA_DIST += bench/demo-boot.py
