# conf/: the default settings file and example VM definitions.
examplesdir = $(pkgdatadir)/examples
dist_examples_DATA = conf/termvisor.conf conf/examples/linux-lab.conf \
	conf/examples/linked-clone.conf
