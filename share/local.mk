# share: files added to the build by this folder

# Templates: a directory each, installed as data under $(pkgdatadir)/templates.
tpl_demodir = $(pkgdatadir)/templates/demo
dist_tpl_demo_DATA = share/templates/demo/template.conf
tpl_debminidir = $(pkgdatadir)/templates/debian-minimal
dist_tpl_debmini_DATA = share/templates/debian-minimal/template.conf \
	share/templates/debian-minimal/build.sh
tpl_debiandir = $(pkgdatadir)/templates/debian
dist_tpl_debian_DATA = share/templates/debian/template.conf share/templates/debian/build.sh
