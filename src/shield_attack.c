/*
 * shield_attack.c - the attack policy's state (see shield_attack.h): one
 * entry per listener group, moved by the flood detector's one-second tick
 * and by the word of the other instances sharing the store.
 *
 * What the policy does while a group is attacked (refuse unknown sources
 * on services, suspect unknown SMTP clients, tighten the limits) is decided
 * where the clients are: in shield.c, asking attack_under().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "config.h"
#include "detect.h"
#include "jsonstr.h"
#include "listener.h"
#include "log.h"
#include "mxguard.h"
#include "notify.h"
#include "promlabel.h"
#include "shield_attack.h"
#include "shield_notice.h"
#include "store.h"

#define ATTACK_NCC (26 * 26)

struct attack_group {
	char name[CFG_NAME_MAX];
	enum detect_state state;      /* as last reported */
	int64_t remote_until;	      /* another MX says this group is attacked */
	uint64_t refused_at_start;    /* REFUSE_ATTACK count when the attack began */
	uint64_t spoofed_at_start[2]; /* mxg_stats.spoofed when the attack began */
	uint64_t spoofed_mark;	      /* network/broadcast count a ddos_window or so ago */
	int64_t mark_at;
	int64_t published;	     /* last time our state went to the other MX */
	int start_noticed;	     /* a start notice went out for this attack */
	uint32_t cc[ATTACK_NCC + 1]; /* attempts by country during the attack */
};

struct attack {
	struct mxg *mxg;
	struct attack_group groups[DETECT_MAX_GROUPS];
	int ngroups;
};

/* attack_groups - group 0 is "smtp"; services name theirs (default "services"). */
static int attack_groups(struct attack *a, char *err, size_t errsz)
{
	struct mxg *mxg = a->mxg;

	snprintf(a->groups[0].name, sizeof(a->groups[0].name), "smtp");
	a->ngroups = 1;
	for (int i = 0; i < mxg->nlisteners; i++) {
		struct listener *l = &mxg->listeners[i];
		const char *name = l->svc < 0 ? "smtp" : mxg->cfg->services[l->svc].group;
		int g;

		for (g = 0; g < a->ngroups; g++)
			if (strcmp(a->groups[g].name, name) == 0)
				break;
		if (g == a->ngroups) {
			if (g == DETECT_MAX_GROUPS) {
				snprintf(err, errsz, "more than %d listener groups",
					 DETECT_MAX_GROUPS);
				return -1;
			}
			snprintf(a->groups[g].name, sizeof(a->groups[g].name), "%s", name);
			a->ngroups++;
		}
		l->group = g;
	}
	return 0;
}

struct attack *attack_new(struct mxg *mxg, char *err, size_t errsz)
{
	struct attack *a = calloc(1, sizeof(*a));

	if (a == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	a->mxg = mxg;
	if (attack_groups(a, err, errsz) < 0) {
		free(a);
		return NULL;
	}
	return a;
}

int attack_ngroups(const struct attack *a)
{
	return a->ngroups;
}

int attack_under(const struct attack *a, const struct detect *det, int g, int64_t now)
{
	return detect_state_of(det, g) != DETECT_NORMAL || a->groups[g].remote_until > now;
}

/* attack_cc_index - "DE" -> 0..675; anything else (unknown) -> ATTACK_NCC. */
static int attack_cc_index(const char cc[3])
{
	if (cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z')
		return ATTACK_NCC;
	return (cc[0] - 'A') * 26 + (cc[1] - 'A');
}

void attack_country(struct attack *a, int g, const char cc[3])
{
	a->groups[g].cc[attack_cc_index(cc)]++;
}

/* attack_top_countries - the five countries with most attempts in group g. */
static void attack_top_countries(const struct attack_group *grp, char *buf, size_t bufsz)
{
	uint32_t done[5] = {0};
	int picked[5], npicked = 0;
	size_t o = 0;

	buf[0] = '\0';
	for (int round = 0; round < 5; round++) {
		int best = -1;

		for (int i = 0; i <= ATTACK_NCC; i++) {
			int taken = 0;

			for (int j = 0; j < npicked; j++)
				taken |= picked[j] == i;
			if (!taken && grp->cc[i] > 0 && (best < 0 || grp->cc[i] > grp->cc[best]))
				best = i;
		}
		if (best < 0)
			break;
		picked[npicked] = best;
		done[npicked++] = grp->cc[best];
		if (o < bufsz)
			o += (size_t)snprintf(buf + o, bufsz - o, "%s%c%c (%u)", round ? ", " : "",
					      best == ATTACK_NCC ? '?' : 'A' + best / 26,
					      best == ATTACK_NCC ? '?' : 'A' + best % 26,
					      done[npicked - 1]);
	}
}

/* attack_notice - attack start or end of group g: the report, then the notice. */
static void attack_notice(struct attack *a, const struct detect *det, int geo, int g,
			  enum notify_kind kind, uint64_t now_ms)
{
	struct attack_group *grp = &a->groups[g];
	struct detect_report r;
	char ccs[256];

	detect_report(det, g, now_ms, &r);
	if (geo)
		attack_top_countries(grp, ccs, sizeof(ccs));
	else
		snprintf(ccs, sizeof(ccs), "(no country database loaded)");
	uint64_t spoofed[2] = {
	    a->mxg->stats.spoofed[0] - grp->spoofed_at_start[0],
	    a->mxg->stats.spoofed[1] - grp->spoofed_at_start[1],
	};

	notice_attack(a->mxg, kind, g, grp->name, &r, ccs,
		      a->mxg->stats.refusals[REFUSE_ATTACK] - grp->refused_at_start, spoofed,
		      now_ms);
}

/*
 * attack_publish_state - tell the instances sharing the store the state of
 * group g. Repeated while the attack lasts (see attack_tick): a peer
 * holds a remote attack for ddos_quiet only, so a peer that missed the end
 * (or this host dying mid-attack) cannot leave it under attack for good.
 */
static void attack_publish_state(struct attack *a, int g, int64_t now)
{
	struct store *store = a->mxg->store;
	char msg[128];

	if (store == NULL)
		return;
	snprintf(msg, sizeof(msg), "attack %s %s", a->groups[g].name,
		 detect_state_name(a->groups[g].state));
	store_publish(store, msg);
	a->groups[g].published = now;
}

/* attack_group_changed - the detector moved group g to a new state. */
static void attack_group_changed(struct attack *a, const struct detect *det, int geo, int g,
				 int64_t now, uint64_t now_ms)
{
	struct attack_group *grp = &a->groups[g];
	enum detect_state st = detect_state_of(det, g), was = grp->state;

	if (st == was)
		return;
	grp->state = st;
	log_warn("attack group=%s state %s -> %s", grp->name, detect_state_name(was),
		 detect_state_name(st));
	if (was == DETECT_NORMAL && st == DETECT_ATTACK) {
		memset(grp->cc, 0, sizeof(grp->cc));
		grp->refused_at_start = a->mxg->stats.refusals[REFUSE_ATTACK];
		/*
		 * Network and broadcast sources are counted all along: the start
		 * notice reports those of the flood that made the attack; the
		 * special-purpose ones are only counted from now on.
		 */
		grp->spoofed_at_start[0] = grp->spoofed_mark;
		grp->spoofed_at_start[1] = a->mxg->stats.spoofed[1];
		grp->start_noticed = 1;
		/*
		 * With several workers each one sees the attack (they add up
		 * their counts): the host sends one notice, worker 0's.
		 */
		if (a->mxg->worker == 0)
			attack_notice(a, det, geo, g, NOTIFY_ATTACK_START, now_ms);
	} else if (st == DETECT_NORMAL && grp->start_noticed) {
		grp->start_noticed = 0;
		if (a->mxg->worker == 0)
			attack_notice(a, det, geo, g, NOTIFY_ATTACK_END, now_ms);
	}
	attack_publish_state(a, g, now);
}

void attack_tick(struct attack *a, struct detect *det, int geo, int64_t now, uint64_t now_ms)
{
	unsigned changed;
	int every;

	detect_tick(det, now_ms);
	changed = detect_changed(det);
	every = a->mxg->cfg->ddos_quiet / 2 > 0 ? a->mxg->cfg->ddos_quiet / 2 : 1;
	for (int g = 0; g < a->ngroups; g++) {
		struct attack_group *grp = &a->groups[g];

		/* While normal, a mark every ddos_window: the start notice counts from it. */
		if (grp->mark_at == 0) {
			grp->mark_at = now; /* the first window counts from the start (mark 0) */
		} else if (grp->state == DETECT_NORMAL &&
			   now - grp->mark_at >= a->mxg->cfg->ddos_window) {
			grp->spoofed_mark = a->mxg->stats.spoofed[MXG_SPOOF_NETBCAST];
			grp->mark_at = now;
		}
		if (changed & (1u << g))
			attack_group_changed(a, det, geo, g, now, now_ms);
		else if (a->groups[g].state != DETECT_NORMAL &&
			 now - a->groups[g].published >= every)
			attack_publish_state(a, g, now);
	}
}

void attack_peer(struct attack *a, const char *group, const char *state, int64_t now)
{
	for (int g = 0; g < a->ngroups; g++) {
		if (strcmp(a->groups[g].name, group) != 0)
			continue;
		/*
		 * Until the peer says it is over, or a quiet period after
		 * its last word (it repeats itself while the attack lasts).
		 */
		int was = a->groups[g].remote_until > now;

		a->groups[g].remote_until =
		    strcmp(state, "normal") == 0 ? 0 : now + a->mxg->cfg->ddos_quiet;
		if (was != (a->groups[g].remote_until > now))
			log_info("attack group=%s state=%s from=peer", group, state);
	}
}

void attack_status(const struct attack *a, const struct detect *det, json_t *groups, int64_t now)
{
	uint64_t ms = (uint64_t)now * 1000;

	for (int g = 0; g < a->ngroups; g++) {
		struct detect_report r;
		json_t *o = json_object();

		detect_report(det, g, ms, &r);
		/* A group name is the operator's text: made valid UTF-8 by jsonstr.c. */
		json_object_set_new(o, "name", jsonstr_cstr(a->groups[g].name));
		json_object_set_new(o, "state", jsonstr_cstr(detect_state_name(r.state)));
		json_object_set_new(o, "remote", json_boolean(a->groups[g].remote_until > now));
		json_object_set_new(o, "distinct", json_integer(r.distinct));
		json_object_set_new(o, "threshold", json_integer(a->mxg->cfg->ddos_threshold));
		json_object_set_new(o, "since", json_integer((json_int_t)(r.since_ms / 1000)));
		json_array_append_new(groups, o);
	}
}

/* attack_label - one sample of metric name for group g, its label escaped. */
static void attack_label(struct evbuffer *out, const char *metric, const char *group)
{
	evbuffer_add_printf(out, "%s{group=\"", metric);
	promlabel_add(out, group);
	evbuffer_add_printf(out, "\"} ");
}

void attack_metrics(const struct attack *a, const struct detect *det, struct evbuffer *out,
		    int64_t now)
{
	uint64_t ms = (uint64_t)now * 1000;

	evbuffer_add_printf(out, "# HELP mxguard_attack_state Listener group state: 0 normal, "
				 "1 attack, 2 converging.\n# TYPE mxguard_attack_state gauge\n");
	for (int g = 0; g < a->ngroups; g++) {
		attack_label(out, "mxguard_attack_state", a->groups[g].name);
		evbuffer_add_printf(out, "%d\n", (int)detect_state_of(det, g));
	}
	evbuffer_add_printf(out, "# HELP mxguard_group_distinct_sources Distinct sources in the "
				 "detector window.\n# TYPE mxguard_group_distinct_sources gauge\n");
	for (int g = 0; g < a->ngroups; g++) {
		struct detect_report r;

		detect_report(det, g, ms, &r);
		attack_label(out, "mxguard_group_distinct_sources", a->groups[g].name);
		evbuffer_add_printf(out, "%u\n", r.distinct);
	}
}

void attack_free(struct attack **ap)
{
	free(*ap);
	*ap = NULL;
}
