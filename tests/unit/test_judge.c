/*
 * test_judge.c - the taRgrey decision as a table: reads cases from a .in
 * file (argv[2]; lists in argv[1]) and prints one line per case: the
 * verdict, its reason, the action and reply, and for a suspect the chain
 * through the store records the case gives (judge.sh diffs it with .ref).
 *
 * A case is NAME and key=value words: client=IP local=IP (the address the
 * client reached; default 192.0.2.25) name=NAME helo=HELO
 * rcpt=ADDR dnsfail=1 attack=1 bl=SCORE:HITS (DNSBL/DNSWL ran), awl=COUNT
 * (an AWL record), tarpit=1 (a tarpit record), grey=AGE:COUNT (a triplet
 * first seen AGE seconds ago with COUNT comebacks), set=PARAM=VALUE (a
 * configuration override; repeatable). The chain after the AWL follows
 * grey.c: starpit tarpits, rgrey greylists, targrey greylists a client with
 * a tarpit record and tarpits one without.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "judge.h"
#include "netaddr.h"
#include "rules.h"
#include "store.h"

#define NOW 1000000

static void show(const char *s)
{
	for (; *s; s++)
		if (*s == '\r')
			fputs("\\r", stdout);
		else if (*s == '\n')
			fputs("\\n", stdout);
		else
			putchar(*s);
}

static int run(const char *dir, char *line)
{
	char *words[32], *sets[8], err[512], spec[4][600];
	char myhost[] = "myhostname=mx.test.example";
	const char *client = "198.18.0.1", *local = "192.0.2.25", *name = NULL,
		   *helo = "mx.sender.example", *rcpt = "user@dest.example", *bl = NULL,
		   *grey = NULL;
	int nw = 0, ns = 0, dnsfail = 0, attack = 0, awl = -1, tarpit = 0;
	struct netaddr ca, la;
	struct judge_lists l;
	struct judge_facts f;
	struct judge_verdict v;
	struct rules *client_r, *helo_r, *rcpt_r;
	struct cfg *cfg;
	char *specs[1];

	for (char *w = strtok(line, " \t\n"); w && nw < 32; w = strtok(NULL, " \t\n"))
		words[nw++] = w;
	if (nw == 0 || words[0][0] == '#')
		return 0;
	sets[ns++] = myhost;
	for (int i = 1; i < nw; i++) {
		char *eq = strchr(words[i], '='), *val = eq ? eq + 1 : words[i] + strlen(words[i]);

		if (eq)
			*eq = '\0';
		if (strcmp(words[i], "client") == 0)
			client = val;
		else if (strcmp(words[i], "local") == 0)
			local = val;
		else if (strcmp(words[i], "name") == 0)
			name = val;
		else if (strcmp(words[i], "helo") == 0)
			helo = val;
		else if (strcmp(words[i], "rcpt") == 0)
			rcpt = val;
		else if (strcmp(words[i], "dnsfail") == 0)
			dnsfail = atoi(val);
		else if (strcmp(words[i], "attack") == 0)
			attack = atoi(val);
		else if (strcmp(words[i], "bl") == 0)
			bl = val;
		else if (strcmp(words[i], "awl") == 0)
			awl = atoi(val);
		else if (strcmp(words[i], "tarpit") == 0)
			tarpit = atoi(val);
		else if (strcmp(words[i], "grey") == 0)
			grey = val;
		else if (strcmp(words[i], "set") == 0 && ns < 8)
			sets[ns++] = val;
		else {
			printf("%s: bad word '%s'\n", words[0], words[i]);
			return 1;
		}
	}
	cfg = cfg_load(NULL, 1, sets, ns, err, sizeof(err));
	snprintf(spec[0], sizeof(spec[0]), "cidr:%s/client.cidr", dir);
	snprintf(spec[1], sizeof(spec[1]), "regexp:%s/helo.regexp", dir);
	specs[0] = spec[0];
	client_r = rules_load(specs, 1, err, sizeof(err));
	specs[0] = spec[1];
	helo_r = rules_load(specs, 1, err, sizeof(err));
	rcpt_r = rules_rcpt_load(NULL, 0, err, sizeof(err));
	if (cfg == NULL || client_r == NULL || helo_r == NULL || rcpt_r == NULL) {
		printf("%s: setup failed: %s\n", words[0], err);
		return 1;
	}
	snprintf(spec[2], sizeof(spec[2]), "%s:25", client);
	netaddr_parse(spec[2], &ca, err, sizeof(err));
	snprintf(spec[3], sizeof(spec[3]), "%s:25", local);
	netaddr_parse(spec[3], &la, err, sizeof(err));
	l.client = client_r;
	l.helo = helo_r;
	l.rcpt = rcpt_r;
	memset(&f, 0, sizeof(f));
	f.client = (const struct sockaddr *)&ca.ss;
	f.local = (const struct sockaddr *)&la.ss;
	f.name = name;
	f.dns_failed = dnsfail;
	f.helo = helo;
	f.helolen = strlen(helo);
	f.rcpt = rcpt;
	f.rcptlen = strlen(rcpt);
	f.attack_suspect = attack;
	if (bl != NULL) {
		char *colon = strchr(bl, ':');

		f.bl_done = 1;
		f.bl_score = atoi(bl);
		f.bl_hits = colon ? colon + 1 : "";
	}
	judge_classify(&l, &f, cfg, &v);
	printf("%s: %s: %s", words[0], v.what, v.extra);
	if (v.note)
		printf(" | %s", v.note);
	printf(" -> %s", v.action == JUDGE_PASS	      ? "pass"
			 : v.action == JUDGE_REJECT   ? "reject"
			 : v.action == JUDGE_TEMPFAIL ? "tempfail"
						      : "suspect");
	if (v.reply[0]) {
		printf(" reply=\"");
		show(v.reply);
		printf("\"");
	}
	if (v.action == JUDGE_SUSPECT) {
		struct store_rec rec = {0}, out;

		rec.count = awl >= 0 ? (unsigned)awl : 0;
		if (judge_awl(cfg, awl >= 0, &rec)) {
			printf(" -> awl pass");
		} else if (cfg->mode == MODE_STARPIT || (cfg->mode == MODE_TARGREY && !tarpit)) {
			printf(" -> tarpit");
		} else {
			static const char *const g[] = {"greylist new", "greylist early",
							"greylist pass"};
			int found = grey != NULL;
			enum judge_grey r;

			memset(&rec, 0, sizeof(rec));
			if (found) {
				rec.first = NOW - atol(grey);
				rec.count =
				    (unsigned)atoi(strchr(grey, ':') ? strchr(grey, ':') + 1 : "0");
			}
			r = judge_greylist(cfg, found, &rec, NOW, &out);
			printf(" -> %s (count=%u expires=+%lld)", g[r], out.count,
			       (long long)(out.expires - NOW));
		}
	}
	printf("\n");
	rules_free(&client_r);
	rules_free(&helo_r);
	rules_free(&rcpt_r);
	cfg_unref(&cfg);
	return 0;
}

int main(int argc, char **argv)
{
	char line[1024];
	FILE *fp;
	int fail = 0;

	if (argc != 3 || (fp = fopen(argv[2], "r")) == NULL) {
		fprintf(stderr, "usage: test_judge LISTDIR CASES.in\n");
		return 2;
	}
	while (fgets(line, sizeof(line), fp) != NULL)
		fail |= run(argv[1], line);
	fclose(fp);
	return fail;
}
