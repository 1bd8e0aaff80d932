/*
 * judge.c - the taRgrey decision, pure.
 *
 * Everything here is computed from its arguments: grey.c gathers the data
 * (DNS, the store) on the loop and acts on the answer, so that what the
 * method decides can be read, and tested, apart from how it waits. Every
 * string comes from the client or a list file: bounded copies only, and
 * only printable text of a list goes back out in a reply.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "judge.h"
#include "netaddr.h"
#include "store.h"

#define JUDGE_PART_MAX 256

/*
 * judge_helo_is_own - does the HELO name claim to be this server, from
 * elsewhere? A client whose address is the one it reached is this host
 * itself (swaks or a cron job run on the server, the default myhostname
 * being the host name): its own name is no lie, as Postfix's usual
 * permit_mynetworks before a HELO check lets it pass.
 */
static int judge_helo_is_own(const struct judge_facts *f, const struct cfg *cfg)
{
	char ip[NETADDR_STRLEN], lit[NETADDR_STRLEN + 2];
	size_t len = f->helolen;

	if (f->local != NULL && f->client != NULL) {
		struct ipkey ck, lk;

		netaddr_key(f->client, &ck);
		netaddr_key(f->local, &lk);
		if (memcmp(ck.b, lk.b, sizeof(ck.b)) == 0)
			return 0;
	}
	if (len == strlen(cfg->myhostname) && strncasecmp(f->helo, cfg->myhostname, len) == 0)
		return 1;
	if (f->local == NULL)
		return 0;
	netaddr_ip(f->local, ip, sizeof(ip));
	snprintf(lit, sizeof(lit), "[%s]", ip);
	return (len == strlen(ip) && strncmp(f->helo, ip, len) == 0) ||
	       (len == strlen(lit) && strncmp(f->helo, lit, len) == 0);
}

/* judge_rules - the lists, HELO, NS, DNSBL/DNSWL, then S25R, into cl. */
static void judge_rules(const struct judge_lists *l, const struct judge_facts *f,
			const struct cfg *cfg, struct classification *cl)
{
	char rcpt[JUDGE_PART_MAX], helo[JUDGE_PART_MAX];

	if (f->rcpt != NULL) {
		snprintf(rcpt, sizeof(rcpt), "%.*s", (int)f->rcptlen, f->rcpt);
		memset(cl, 0, sizeof(*cl));
		if (rules_rcpt_match(l->rcpt, rcpt, cl->reason, sizeof(cl->reason))) {
			cl->verdict = VERDICT_WHITE;
			return;
		}
	}
	if (rules_lists(l->client, f->name, f->client, cl))
		return;
	if (f->helolen > 0 && judge_helo_is_own(f, cfg)) {
		memset(cl, 0, sizeof(*cl));
		cl->verdict = VERDICT_BLACK;
		cl->reply_code = 550;
		snprintf(cl->reason, sizeof(cl->reason), "helo:own");
		snprintf(cl->reply, sizeof(cl->reply), "HELO claims to be this server");
		return;
	}
	snprintf(helo, sizeof(helo), "%.*s", (int)f->helolen, f->helo);
	if (f->helolen > 0) {
		struct classification hc;

		if (rules_lists(l->helo, helo, NULL, &hc)) {
			*cl = hc;
			/* Reasons name the list; say it was about the HELO. */
			snprintf(cl->reason, sizeof(cl->reason), "helo:%.150s", hc.reason);
			return;
		}
	}
	if (f->bl_done && f->ns_cl != NULL) {
		*cl = *f->ns_cl;
		return;
	}
	if (f->bl_done && f->bl_score >= cfg->dnsbl_threshold) {
		char ip[NETADDR_STRLEN];

		memset(cl, 0, sizeof(*cl));
		cl->verdict = VERDICT_BLACK;
		cl->reply_code = 550;
		netaddr_ip(f->client, ip, sizeof(ip));
		snprintf(cl->reason, sizeof(cl->reason), "dnsbl:score=%d:%.100s", f->bl_score,
			 f->bl_hits);
		snprintf(cl->reply, sizeof(cl->reply),
			 "Service unavailable; client [%s] blocked using %.100s", ip, f->bl_hits);
		return;
	}
	if (f->bl_done && f->bl_score <= cfg->dnswl_threshold) {
		memset(cl, 0, sizeof(*cl));
		cl->verdict = VERDICT_WHITE;
		snprintf(cl->reason, sizeof(cl->reason), "dnswl:score=%d:%.100s", f->bl_score,
			 f->bl_hits);
		return;
	}
	rules_classify(l->client, f->name, f->client, cl);
}

void judge_classify(const struct judge_lists *l, const struct judge_facts *f, const struct cfg *cfg,
		    struct judge_verdict *v)
{
	struct classification *cl = &v->cl;

	memset(v, 0, sizeof(*v));
	v->what = "verdict";
	if (f->dns_failed) {
		if (cfg->dns_failure_action == DNSFAIL_PASS) {
			snprintf(v->extra, sizeof(v->extra), "verdict=pass reason=dns:fail");
			v->action = JUDGE_PASS;
			return;
		}
		if (cfg->dns_failure_action == DNSFAIL_TEMPFAIL && cfg->mode == MODE_WARN) {
			v->what = "warn: would defer";
			snprintf(v->extra, sizeof(v->extra), "reason=dns:fail");
			v->action = JUDGE_PASS;
			return;
		}
		if (cfg->dns_failure_action == DNSFAIL_TEMPFAIL) {
			snprintf(v->extra, sizeof(v->extra), "verdict=tempfail reason=dns:fail");
			snprintf(v->reply, sizeof(v->reply),
				 "451 4.4.3 Temporary DNS failure, please try again later\r\n");
			v->action = JUDGE_TEMPFAIL;
			return;
		}
		/* suspect: the name is unknown, as S25R r0 sees it. */
	}
	judge_rules(l, f, cfg, cl);
	/* The listener group is under attack and the client was not known before. */
	if (f->attack_suspect && cl->verdict == VERDICT_CLEAN) {
		cl->verdict = VERDICT_SUSPECT;
		snprintf(cl->reason, sizeof(cl->reason), "attack:unknown");
	}
	v->classified = 1;
	snprintf(v->extra, sizeof(v->extra), "verdict=%s reason=%s%s%s%s",
		 rules_verdict_name(cl->verdict), cl->reason, f->dns_failed ? " dns=fail" : "",
		 cl->warned ? " warn=" : "", cl->warned ? cl->warn : "");
	v->what = cfg->mode == MODE_WARN ? "warn: verdict" : "verdict";
	switch (cl->verdict) {
	case VERDICT_WHITE:
	case VERDICT_CLEAN:
		v->action = JUDGE_PASS;
		return;
	case VERDICT_BLACK: {
		int code = cl->reply_code ? cl->reply_code : 550;
		char text[sizeof(cl->reply)];

		if (cfg->mode == MODE_WARN) {
			v->note = "warn: would reject";
			v->action = JUDGE_PASS;
			return;
		}
		/* Only printable text from the list file goes back out. */
		snprintf(text, sizeof(text), "%s", cl->reply);
		for (char *p = text; *p; p++)
			if (!isprint((unsigned char)*p))
				*p = ' ';
		/* A list text that brings its own enhanced code keeps it. */
		if (isdigit((unsigned char)text[0]) && text[1] == '.')
			snprintf(v->reply, sizeof(v->reply), "%d %s\r\n", code, text);
		else
			snprintf(v->reply, sizeof(v->reply), "%d %d.7.1 %s\r\n", code, code / 100,
				 text);
		v->action = JUDGE_REJECT;
		return;
	}
	case VERDICT_SUSPECT:
		break;
	}
	if (cfg->mode == MODE_WARN) {
		v->note = "warn: would tarpit or greylist";
		v->action = JUDGE_PASS;
		return;
	}
	v->action = JUDGE_SUSPECT;
}

int judge_awl(const struct cfg *cfg, int found, const struct store_rec *rec)
{
	return found && cfg->awl_count > 0 && (int)rec->count >= cfg->awl_count;
}

enum judge_grey judge_greylist(const struct cfg *cfg, int found, const struct store_rec *rec,
			       time_t now, struct store_rec *out)
{
	if (!found) {
		out->first = out->last = now;
		out->count = 0;
		out->expires = now + cfg->greylist_retry_window;
		return JUDGE_GREY_NEW;
	}
	*out = *rec;
	out->count++;
	out->last = now;
	if (now - out->first >= cfg->greylist_delay && (int)out->count >= cfg->greylist_retries) {
		/* Passed: remembered for max_age, so it passes at once from now on. */
		out->expires = now + cfg->greylist_max_age;
		return JUDGE_GREY_PASS;
	}
	/* Not yet: the retry window counts from the first attempt. */
	out->expires = out->first + cfg->greylist_retry_window;
	return JUDGE_GREY_EARLY;
}
