#include <stdlib.h>
#include <string.h>

#include "src/cli/netinfo.h"
#include "src/core/client.h"
#include "src/core/json.h"
#include "src/core/protocol.h"
#include "common/util.h"

static char *netinfo_from_def(const struct vmdef *d)
{
	struct vm_nic nics[NET_NICS_MAX];
	struct proto_buf b = {0};
	size_t n = 0;
	char *text;

	for (size_t i = 0; d != NULL && i < d->nnets && n < NET_NICS_MAX; i++)
		if (vmdef_nic(d, i, &nics[n], NULL) == 0)
			n++;
	proto_kv_put_nics(&b, nics, n, NULL);
	text = xstrndup_len((const char *)b.data, b.len);
	proto_buf_free(&b);
	return text;
}

char *netinfo_get(const struct tv_paths *p, const char *name, bool live, const struct vmdef *def)
{
	struct tv_err err;
	char *text = live ? client_oneshot_net_info(p, name, &err) : NULL;

	return text != NULL ? text : netinfo_from_def(def);
}

void netinfo_json(FILE *f, const char *kv)
{
	char mode[8], mac[18], addr[64], fwds[NET_FORWARDS_MAX * 40];
	unsigned n = proto_kv_nic_count(kv);

	fprintf(f, "[");
	for (unsigned i = 0; i < n; i++) {
		char *save = NULL, *tok;

		proto_kv_nic_field(kv, i, "mode", mode, sizeof(mode));
		proto_kv_nic_field(kv, i, "mac", mac, sizeof(mac));
		proto_kv_nic_field(kv, i, "address", addr, sizeof(addr));
		proto_kv_nic_field(kv, i, "forwards", fwds, sizeof(fwds));
		fprintf(f, "%s{\"mode\": ", i ? ", " : "");
		json_string(f, mode);
		fprintf(f, ", \"mac\": ");
		json_string(f, mac);
		fprintf(f, ", \"address\": ");
		if (addr[0])
			json_string(f, addr);
		else
			fprintf(f, "null");
		fprintf(f, ", \"forwards\": [");
		for (tok = strtok_r(fwds, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
			json_string(f, tok);
			if (save != NULL && *save != '\0')
				fprintf(f, ", ");
		}
		fprintf(f, "]}");
	}
	fprintf(f, "]");
}

void netinfo_text(FILE *f, const char *kv)
{
	char mode[8], mac[18], addr[64], fwds[NET_FORWARDS_MAX * 40];
	unsigned n = proto_kv_nic_count(kv);

	for (unsigned i = 0; i < n; i++) {
		proto_kv_nic_field(kv, i, "mode", mode, sizeof(mode));
		proto_kv_nic_field(kv, i, "mac", mac, sizeof(mac));
		proto_kv_nic_field(kv, i, "address", addr, sizeof(addr));
		proto_kv_nic_field(kv, i, "forwards", fwds, sizeof(fwds));
		fprintf(f, "net%u:     %s %s%s%s%s%s\n", i, mode, mac, addr[0] ? " address " : "",
			addr, fwds[0] ? " forwards " : "", fwds);
	}
}
