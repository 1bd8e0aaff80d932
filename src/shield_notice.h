/*
 * shield_notice.h - what the shield tells the admin through notify.c: a
 * burst of blocks within a minute, and the start and end of an attack on
 * a listener group (with the log line that goes with them).
 */
#ifndef MXG_SHIELD_NOTICE_H
#define MXG_SHIELD_NOTICE_H

#include <stdint.h>

#include "netaddr.h"
#include "notify.h"

struct mxg;
struct detect_report;

#define NOTICE_RECENT 16

/*
 * A burst of blocks: a minute counted from the first block after the last
 * minute ended, and the first NOTICE_RECENT blocks of it for the notice.
 * Zeroed by its owner (the shield) before the first notice_block.
 */
struct notice_burst {
	int64_t start;
	uint32_t count;
	int noticed; /* the notice of this minute went out */
	struct ipkey recent[NOTICE_RECENT];
	uint32_t recent_secs[NOTICE_RECENT];
	int nrecent;
};

/*
 * notice_block - count the block of k (for secs seconds) toward burst b;
 * when the minute's count reaches block_burst, send one NOTIFY_BLOCKS
 * notice naming the first blocks (once per minute; nothing without
 * mxg->notify).
 */
void notice_block(struct notice_burst *b, struct mxg *mxg, const struct ipkey *k, uint32_t secs,
		  int64_t now);

/*
 * notice_netblock - one NOTIFY_BLOCKS notice for the block of the network
 * net/plen (secs seconds, escalation level), naming the n addresses whose
 * blocks caused it (nothing without mxg->notify).
 */
void notice_netblock(struct mxg *mxg, const struct ipkey *net, int plen, uint32_t secs,
		     uint32_t level, const struct ipkey *addrs, int n);

/*
 * notice_attack - the start or the end (kind: NOTIFY_ATTACK_START or
 * NOTIFY_ATTACK_END) of an attack on listener group g, named name: log
 * one "attack group=..." line and send the notice (when mxg->notify is
 * set). r is the detector's report of the group at now_ms; countries the
 * text of its top countries; refused the refusals by the attack policy
 * since the attack began; spoofed the attempts from sources that cannot be
 * real hosts (MXG_SPOOF_*: network or broadcast addresses since about a
 * ddos_window before the attack, special-purpose ones since it began).
 */
void notice_attack(struct mxg *mxg, enum notify_kind kind, int g, const char *name,
		   const struct detect_report *r, const char *countries, uint64_t refused,
		   const uint64_t spoofed[2], uint64_t now_ms);

#endif
