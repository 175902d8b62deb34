/* For the tests: prints the events a client of VM NAME's control socket gets,
 * one line each ("EVENT TEXT", EVENT a PROTO_EV_* number), until the VM
 * process hangs up or SECONDS pass. It subscribes first (and prints
 * "subscribed") unless told --plain, which only says hello (and prints
 * "connected"): such a client must get no event but the last. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "src/core/client.h"
#include "src/core/paths.h"
#include "src/core/protocol.h"

static void on_event(void *ctx, uint8_t event, const char *text)
{
	printf("%u %s\n", event, text);
	fflush(stdout);
}

static const struct client_handlers handlers = {.event = on_event};

int main(int argc, char **argv)
{
	struct tv_paths paths;
	struct tv_client *c;
	struct tv_err err;
	bool plain = argc > 3 && strcmp(argv[3], "--plain") == 0;
	uint64_t deadline;

	if (argc < 3) {
		fprintf(stderr, "usage: tv-events NAME SECONDS [--plain]\n");
		return 2;
	}
	deadline = monotonic_ns() + (uint64_t)atoi(argv[2]) * 1000000000ull;
	if (paths_init(&paths, &err) < 0 || (c = client_connect(&paths, argv[1], &err)) == NULL) {
		fprintf(stderr, "tv-events: %s\n", err.msg);
		return 1;
	}
	client_set_handlers(c, &handlers, NULL);
	if (!plain && client_request(c, PROTO_SUBSCRIBE, NULL, 0, NULL, NULL, &err) < 0) {
		fprintf(stderr, "tv-events: %s\n", err.msg);
		return 1;
	}
	printf("%s\n", plain ? "connected" : "subscribed");
	fflush(stdout);
	while (monotonic_ns() < deadline) {
		struct pollfd pfd = {.fd = client_fd(c), .events = POLLIN};
		if (poll(&pfd, 1, 100) > 0 && client_pump(c, &err) < 0)
			break; /* the VM process hung up */
	}
	client_close(c);
	paths_free(&paths);
	return 0;
}
