# bench: files added to the build by this folder
EXTRA_DIST += bench/demo-boot.py
EXTRA_DIST += bench/console-attach.sh bench/console-attach.py
EXTRA_DIST += bench/boot.sh bench/boot.py bench/first-byte.S
EXTRA_DIST += bench/virtio-blk.sh
EXTRA_DIST += bench/snapshot.sh bench/snapshot.py
EXTRA_DIST += bench/many.sh bench/many.py
