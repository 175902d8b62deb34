# tests/fuzz: files added to the build by this folder
