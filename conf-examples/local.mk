# conf-examples/: the shipped examples (tests/e2e runs each on the file as
# shipped; see README.md, "Operating fcgiq").

# make install: the example handlers where fcgiq.conf's handler lines look
# for them ($(libexecdir)/fcgiq: /usr/local/libexec/fcgiq by default), the
# configurations and units in $(docdir)/examples.
fcgiqlibexecdir = $(libexecdir)/fcgiq
dist_fcgiqlibexec_SCRIPTS = conf-examples/handlers/store-to-dir \
	conf-examples/handlers/github-deploy conf-examples/handlers/send-mail

examplesdir = $(docdir)/examples
dist_examples_DATA = conf-examples/fcgiq.conf conf-examples/nginx.conf \
	conf-examples/apache-proxy-fcgi.conf conf-examples/apache-fcgid.conf \
	conf-examples/spawn-fcgi.sh conf-examples/Caddyfile \
	conf-examples/lighttpd.conf conf-examples/h2o.conf conf-examples/cgi-fcgi.sh \
	conf-examples/nginx-snippet.conf conf-examples/apache-metrics.conf \
	conf-examples/nginx-dashboard.conf conf-examples/apache-dashboard.conf

# nginx + fcgiq + PHP-FPM: the fastcgi: handler kind.
phpfpmexamplesdir = $(examplesdir)/php-fpm
dist_phpfpmexamples_DATA = conf-examples/php-fpm/fcgiq.conf \
	conf-examples/php-fpm/nginx.conf

systemdexamplesdir = $(examplesdir)/systemd
dist_systemdexamples_DATA = conf-examples/systemd/fcgiq.socket \
	conf-examples/systemd/fcgiq.service \
	conf-examples/systemd/fcgiq-spawn.service \
	conf-examples/systemd/fcgiq-work.service

# The http: handler kind: jobs delivered to an HTTP service.
httpexamplesdir = $(examplesdir)/http
dist_httpexamples_DATA = conf-examples/http/fcgiq.conf

# Runs from a checkout only (it builds the tree): shipped, not installed.
EXTRA_DIST += conf-examples/quickstart.sh


promexamplesdir = $(examplesdir)/prometheus
dist_promexamples_DATA = conf-examples/prometheus/prometheus.yml \
	conf-examples/prometheus/fcgiq-rules.yml
