/*
 * system.transfers.connect_to on the push worker's requests to the
 * destination (never on the panel's: shared/panel.c does not come here).
 * The entry matching rec.url becomes the handle's CURLOPT_CONNECT_TO, so
 * curl connects to its address while Host, SNI and certificate verification
 * keep the URL's host; its ca_file, if any, replaces transfers.ca_file.
 * The record keeps the entry (extra.connect_to) and the address each
 * request went to (extra.destination_address, what libcurl reports as the
 * primary IP and port); the log says both, not the transfer's events (the
 * panel shows those to server owners, who need not see internal addresses).
 */
#include "autoconf.h"

#include "push.h"
#include "config.h"
#include "connect_to.h"
#include "curl_setup.h"
#include "log.h"
#include "util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
extra_string(const struct job *job, const char *key)
{
	json_object *v;
	if (job->rec.extra != NULL && json_object_object_get_ex(job->rec.extra, key, &v) &&
	    json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

/* CURLOPT_PREREQFUNCTION: the connection is up (TLS verified); note where it goes. */
static int
on_connected(void *ctx, char *ip, char *local_ip, int remote_port, int local_port)
{
	(void)local_ip;
	(void)local_port;
	struct job *job = ctx;
	char addr[80];
	if (ip == NULL || wx_snprintf(addr, sizeof addr, strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip,
	    remote_port) < 0)
		return CURL_PREREQFUNC_OK;
	const char *was = extra_string(job, "destination_address");
	if (was != NULL && strcmp(was, addr) == 0)
		return CURL_PREREQFUNC_OK;
	if (job->rec.extra == NULL)
		job->rec.extra = json_object_new_object();
	json_object_object_add(job->rec.extra, "destination_address", json_object_new_string(addr));
	if (job->connect_to != NULL)
		wx_info("connected to the destination at %s (system.transfers.connect_to %s)", addr,
		    job->connect_to->data);
	else
		wx_debug("connected to the destination at %s", addr);
	return CURL_PREREQFUNC_OK;
}

/*
 * The curl entry "HOST:PORT:ADDRESS:PORT" for o, built once and kept in
 * job->connect_to for every handle of the job (a job has one destination URL,
 * so one entry).
 */
static int
remember(struct job *job, const struct wx_connect_to *o)
{
	if (job->connect_to != NULL)
		return 0;
	char *entry = xasprintf("%s:%s", o->match, o->connect);
	job->connect_to = curl_slist_append(NULL, entry);
	free(entry);
	if (job->connect_to == NULL)
		return -1;
	json_object *j = json_object_new_object();
	json_object_object_add(j, "match", json_object_new_string(o->match));
	json_object_object_add(j, "connect", json_object_new_string(o->connect));
	if (o->ca_file != NULL)
		json_object_object_add(j, "ca_file", json_object_new_string(o->ca_file));
	if (job->rec.extra == NULL)
		job->rec.extra = json_object_new_object();
	json_object_object_add(job->rec.extra, "connect_to", j);
	wx_info("%s: requests to %s connect to %s (system.transfers.connect_to, line %d)%s%s",
	    job->rec.url, o->match, o->connect, o->line, o->ca_file ? ", CA file " : "",
	    o->ca_file ? o->ca_file : "");
	return 0;
}

void
connect_to_apply(CURL *c, struct job *job, struct wx_curl_set *s)
{
	const struct wx_connect_to *o =
	    wx_connect_to_find(&job->cfg->transfers.connect_to, job->rec.url);
	if (o != NULL) {
		bool was_set = s->rc == CURLE_OK;
		if (remember(job, o) < 0 && s->rc == CURLE_OK) {
			s->rc = CURLE_OUT_OF_MEMORY;
			s->option = "CURLOPT_CONNECT_TO";
		}
		WX_CURL_SET(c, s, CURLOPT_CONNECT_TO, job->connect_to);
		if (o->ca_file != NULL)
			WX_CURL_SET(c, s, CURLOPT_CAINFO, o->ca_file);
		if (was_set && s->rc != CURLE_OK)
			wx_err("cannot set system.transfers.connect_to %s -> %s on the request: "
			    "refusing to send it elsewhere", o->match, o->connect);
		if (s->rc != CURLE_OK)
			return;
	}
	if (curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, on_connected) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PREREQDATA, job) != CURLE_OK)
		wx_debug("libcurl has no CURLOPT_PREREQFUNCTION: the destination address is not "
		    "recorded");
}
