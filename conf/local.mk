# conf: files added to the build by this folder
