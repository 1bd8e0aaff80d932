/*
 * test_shield.c - the shield's interface to the connection layer, with
 * plain data only (no struct conn): shield_conn_open counts an admitted
 * client in the per-source and per-prefix tables and says which tables
 * counted it; shield_conn_close uncounts exactly the tables named in the
 * bits it is given; shield_admit sees those counts (conn_per_source,
 * conn_per_prefix); allowed clients and a missing shield count nothing;
 * shield_smtp_suspect is 0 while no group is attacked.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"
#include "config.h"
#include "listen.h"
#include "mxguard.h"
#include "shield.h"

/* sa4 - the socket address of text (an IPv4 address), port 25. */
static const struct sockaddr *sa4(struct sockaddr_in *sin, const char *text)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(25);
	if (inet_pton(AF_INET, text, &sin->sin_addr) != 1)
		abort();
	return (const struct sockaddr *)sin;
}

int main(void)
{
	char err[512];
	char o1[] = "conn_per_source=1", o2[] = "conn_per_prefix=2", o3[] = "prefix_v4=24",
	     o4[] = "allow_clients=127.0.0.1";
	char *ov[] = {o1, o2, o3, o4};
	struct mxg mxg;
	struct listener lst;
	struct sockaddr_in a, b, c, lo;
	struct cfg *cfg;
	unsigned lim_a, lim_b;

	cfg = cfg_load("/nonexistent/mxguard.conf", 1, ov, 4, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "cfg_load: %s\n", err);
		return 2;
	}
	memset(&mxg, 0, sizeof(mxg));
	memset(&lst, 0, sizeof(lst));
	lst.mxg = &mxg;
	lst.svc = -1;
	snprintf(lst.name, sizeof(lst.name), "127.0.0.1:25");
	snprintf(lst.service, sizeof(lst.service), "smtp");
	mxg.cfg = cfg;
	mxg.listeners = &lst;
	mxg.nlisteners = 1;
	if ((mxg.shield = shield_new(&mxg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "shield_new: %s\n", err);
		return 2;
	}
	sa4(&a, "11.1.2.3");
	sa4(&b, "11.1.2.4");
	sa4(&c, "11.1.2.5");
	sa4(&lo, "127.0.0.1");

	/* Counted in both tables; the source limit (1) is then reached. */
	lim_a = shield_conn_open(mxg.shield, cfg, (struct sockaddr *)&a);
	CHECK(lim_a == (SHIELD_LIM_SRC | SHIELD_LIM_NET), "lim_a=%u", lim_a);
	CHECK(shield_admit(&mxg, &lst, (struct sockaddr *)&a) == REFUSE_CONN_SOURCE, "a again");
	CHECK(shield_admit(&mxg, &lst, (struct sockaddr *)&b) == -1, "b, prefix 1 of 2");

	/* A second source of the /24: the prefix limit (2) is reached. */
	lim_b = shield_conn_open(mxg.shield, cfg, (struct sockaddr *)&b);
	CHECK(lim_b == (SHIELD_LIM_SRC | SHIELD_LIM_NET), "lim_b=%u", lim_b);
	CHECK(shield_admit(&mxg, &lst, (struct sockaddr *)&c) == REFUSE_CONN_PREFIX,
	      "c, prefix full");

	/* Only the tables named in the bits are uncounted. */
	shield_conn_close(mxg.shield, cfg, (struct sockaddr *)&b, lim_b & SHIELD_LIM_SRC, 0);
	CHECK(shield_admit(&mxg, &lst, (struct sockaddr *)&c) == REFUSE_CONN_PREFIX,
	      "prefix still counted");
	shield_conn_close(mxg.shield, cfg, (struct sockaddr *)&b, lim_b & SHIELD_LIM_NET, 0);
	CHECK(shield_admit(&mxg, &lst, (struct sockaddr *)&c) == -1, "prefix uncounted");
	CHECK(shield_admit(&mxg, &lst, (struct sockaddr *)&b) == -1, "b uncounted");
	shield_conn_close(mxg.shield, cfg, (struct sockaddr *)&a, lim_a, 1);
	CHECK(shield_admit(&mxg, &lst, (struct sockaddr *)&a) == -1, "a uncounted");

	/* allow_clients are never counted; the keys ignore the port. */
	CHECK(shield_conn_open(mxg.shield, cfg, (struct sockaddr *)&lo) == 0, "allowed");
	a.sin_port = htons(40000);
	lim_a = shield_conn_open(mxg.shield, cfg, (struct sockaddr *)&a);
	a.sin_port = htons(25);
	CHECK(shield_admit(&mxg, &lst, (struct sockaddr *)&a) == REFUSE_CONN_SOURCE, "any port");
	shield_conn_close(mxg.shield, cfg, (struct sockaddr *)&a, lim_a, 0);

	/* No attack: nobody is a suspect. */
	CHECK(shield_smtp_suspect(mxg.shield, cfg, &lst, (struct sockaddr *)&a) == 0, "suspect");

	/* Without a shield: nothing counted, nothing suspected, no crash. */
	CHECK(shield_conn_open(NULL, cfg, (struct sockaddr *)&a) == 0, "no shield");
	shield_conn_close(NULL, cfg, (struct sockaddr *)&a, SHIELD_LIM_SRC | SHIELD_LIM_NET, 1);
	CHECK(shield_smtp_suspect(NULL, cfg, &lst, (struct sockaddr *)&a) == 0, "no shield");

	/* A network block (the operator's): its prefix only, the whole /24 refused. */
	CHECK(shield_block(&mxg, "11.9.9.0/16", 60, err, sizeof(err)) < 0, "not the prefix");
	CHECK(shield_block(&mxg, "11.9.9.1/24", 60, err, sizeof(err)) < 0, "host bits");
	CHECK(shield_block(&mxg, "11.9.9.0/24", 60, err, sizeof(err)) == 0, "net: %s", err);
	CHECK(shield_admit(&mxg, &lst, sa4(&c, "11.9.9.77")) == REFUSE_BLOCKED, "in the net");
	CHECK(shield_admit(&mxg, &lst, sa4(&c, "11.9.8.77")) == -1, "next net");
	CHECK(shield_unblock(&mxg, "11.9.9.0/24", err, sizeof(err)) == 1, "unblock");
	CHECK(shield_admit(&mxg, &lst, sa4(&c, "11.9.9.77")) == -1, "lifted");

	shield_free(&mxg.shield);
	cfg_unref(&cfg);

	/*
	 * smtp_bogus_check refuses RFC 6890 sources, and only those: a public
	 * IPv4 source is not "::ffff:0:0/96" (every IPv4 key is mapped).
	 */
	{
		char b1[] = "smtp_bogus_check=yes", b2[] = "allow_clients=";
		char *bv[] = {b1, b2};

		cfg = cfg_load("/nonexistent/mxguard.conf", 1, bv, 2, err, sizeof(err));
		CHECK(cfg != NULL, "cfg_load: %s", err);
		mxg.cfg = cfg;
		mxg.shield = shield_new(&mxg, err, sizeof(err));
		CHECK(mxg.shield != NULL, "shield_new: %s", err);
		CHECK(shield_admit(&mxg, &lst, sa4(&a, "11.1.2.3")) == -1, "public v4 bogus?");
		CHECK(shield_admit(&mxg, &lst, sa4(&a, "10.1.2.3")) == REFUSE_BOGUS, "10/8");
		CHECK(shield_admit(&mxg, &lst, sa4(&a, "192.0.2.1")) == REFUSE_BOGUS, "TEST-NET");
		shield_free(&mxg.shield);
		cfg_unref(&cfg);
	}
	return check_done("shield");
}
