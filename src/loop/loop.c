/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The one event loop on epoll: fds with callbacks, timers on timerfd, signals
 * on signalfd, prepare hooks (may shorten the wait: MHD timeouts) and after
 * hooks (run after every wake: MHD_run). Single-threaded by design, because
 * libcoap 4.3.1 is not thread-safe.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "mef/err.h"
#include "mef/log.h"
#include "mef/loop.h"

enum src_kind { SRC_FD, SRC_TIMER, SRC_SIGNAL };

struct loop_src {
	enum src_kind kind;
	int fd;
	bool dead;        /* removed while callbacks may still hold it */
	loop_fd_cb fd_cb;
	loop_timer_cb timer_cb;
	loop_signal_cb signal_cb;
	void *ctx;
	struct loop_src *next;
};

struct loop_hook {
	loop_prepare_cb prepare;
	loop_after_cb after;
	void *ctx;
	struct loop_hook *next;
};

struct loop {
	int epfd;
	bool running;
	struct loop_src *srcs;
	struct loop_hook *hooks;
};

struct loop *
loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	return l;
}

static void
reap_dead(struct loop *l)
{
	struct loop_src **pp = &l->srcs;

	while (*pp) {
		struct loop_src *s = *pp;

		if (s->dead) {
			*pp = s->next;
			free(s);
		} else {
			pp = &s->next;
		}
	}
}

struct loop *
loop_free(struct loop *l)
{
	if (!l)
		return NULL;
	for (struct loop_src *s = l->srcs; s; s = s->next)
		if (s->kind != SRC_FD && !s->dead)
			close(s->fd);
	for (struct loop_src *s = l->srcs; s; s = s->next)
		s->dead = true;
	reap_dead(l);
	while (l->hooks) {
		struct loop_hook *h = l->hooks;

		l->hooks = h->next;
		free(h);
	}
	close(l->epfd);
	free(l);
	return NULL;
}

static int
add_src(struct loop *l, struct loop_src *s, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = s};

	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, s->fd, &ev) != 0) {
		free(s);
		return MEF_EIO;
	}
	s->next = l->srcs;
	l->srcs = s;
	return 0;
}

int
loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_cb cb, void *ctx)
{
	struct loop_src *s = calloc(1, sizeof(*s));

	if (!s)
		return MEF_ENOMEM;
	*s = (struct loop_src){.kind = SRC_FD, .fd = fd, .fd_cb = cb, .ctx = ctx};
	return add_src(l, s, events);
}

static struct loop_src *
find_src(struct loop *l, enum src_kind kind, int fd)
{
	for (struct loop_src *s = l->srcs; s; s = s->next)
		if (!s->dead && s->kind == kind && s->fd == fd)
			return s;
	return NULL;
}

int
loop_del_fd(struct loop *l, int fd)
{
	struct loop_src *s = find_src(l, SRC_FD, fd);

	if (!s)
		return MEF_ENOTFOUND;
	(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	s->dead = true;
	return 0;
}

int
loop_add_timer(struct loop *l, uint64_t first_ms, uint64_t interval_ms, loop_timer_cb cb,
	       void *ctx, int *ret_id)
{
	struct itimerspec its = {0};
	struct loop_src *s;
	int fd, r;

	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0)
		return MEF_EIO;
	if (first_ms == 0)
		first_ms = 1; /* a zero it_value disarms the timer */
	its.it_value.tv_sec = (time_t)(first_ms / 1000);
	its.it_value.tv_nsec = (long)(first_ms % 1000) * 1000000L;
	its.it_interval.tv_sec = (time_t)(interval_ms / 1000);
	its.it_interval.tv_nsec = (long)(interval_ms % 1000) * 1000000L;
	s = calloc(1, sizeof(*s));
	if (!s || timerfd_settime(fd, 0, &its, NULL) != 0) {
		free(s);
		close(fd);
		return s ? MEF_EIO : MEF_ENOMEM;
	}
	*s = (struct loop_src){.kind = SRC_TIMER, .fd = fd, .timer_cb = cb, .ctx = ctx};
	r = add_src(l, s, EPOLLIN);
	if (r != 0) {
		close(fd);
		return r;
	}
	if (ret_id)
		*ret_id = fd;
	return 0;
}

int
loop_del_timer(struct loop *l, int id)
{
	struct loop_src *s = find_src(l, SRC_TIMER, id);

	if (!s)
		return MEF_ENOTFOUND;
	(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, id, NULL);
	close(id);
	s->dead = true;
	return 0;
}

int
loop_add_signals(struct loop *l, const int *signals, int n, loop_signal_cb cb, void *ctx)
{
	struct loop_src *s;
	sigset_t set;
	int fd, r;

	sigemptyset(&set);
	for (int i = 0; i < n; i++)
		sigaddset(&set, signals[i]);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return MEF_EIO;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return MEF_EIO;
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(fd);
		return MEF_ENOMEM;
	}
	*s = (struct loop_src){.kind = SRC_SIGNAL, .fd = fd, .signal_cb = cb, .ctx = ctx};
	r = add_src(l, s, EPOLLIN);
	if (r != 0)
		close(fd);
	return r;
}

static int
add_hook(struct loop *l, loop_prepare_cb p, loop_after_cb a, void *ctx)
{
	struct loop_hook *h = calloc(1, sizeof(*h));

	if (!h)
		return MEF_ENOMEM;
	*h = (struct loop_hook){.prepare = p, .after = a, .ctx = ctx, .next = l->hooks};
	l->hooks = h;
	return 0;
}

int
loop_add_prepare(struct loop *l, loop_prepare_cb cb, void *ctx)
{
	return add_hook(l, cb, NULL, ctx);
}

int
loop_add_after(struct loop *l, loop_after_cb cb, void *ctx)
{
	return add_hook(l, NULL, cb, ctx);
}

int
loop_del_hooks(struct loop *l, void *ctx)
{
	struct loop_hook **pp = &l->hooks;

	while (*pp) {
		struct loop_hook *h = *pp;

		if (h->ctx == ctx) {
			*pp = h->next;
			free(h);
		} else {
			pp = &h->next;
		}
	}
	return 0;
}

static void
dispatch(struct loop *l, struct loop_src *s, uint32_t events)
{
	if (s->dead)
		return;
	switch (s->kind) {
	case SRC_FD:
		s->fd_cb(l, s->fd, events, s->ctx);
		break;
	case SRC_TIMER: {
		uint64_t expirations;

		if (read(s->fd, &expirations, sizeof(expirations)) == sizeof(expirations))
			s->timer_cb(l, s->ctx);
		break;
	}
	case SRC_SIGNAL: {
		struct signalfd_siginfo si;

		while (read(s->fd, &si, sizeof(si)) == sizeof(si))
			s->signal_cb(l, (int)si.ssi_signo, s->ctx);
		break;
	}
	}
}

static int
prepare_timeout(struct loop *l)
{
	int timeout = -1;

	for (struct loop_hook *h = l->hooks; h; h = h->next) {
		int t;

		if (!h->prepare)
			continue;
		t = h->prepare(l, h->ctx);
		if (t >= 0 && (timeout < 0 || t < timeout))
			timeout = t;
	}
	return timeout;
}

int
loop_run(struct loop *l)
{
	struct epoll_event evs[64];

	l->running = true;
	while (l->running) {
		int n = epoll_wait(l->epfd, evs, 64, prepare_timeout(l));

		if (n < 0 && errno != EINTR) {
			log_err("epoll_wait: %s", strerror(errno));
			return MEF_EIO;
		}
		for (int i = 0; i < n; i++)
			dispatch(l, evs[i].data.ptr, evs[i].events);
		for (struct loop_hook *h = l->hooks, *next; h; h = next) {
			next = h->next; /* an after hook may remove itself */
			if (h->after)
				h->after(l, h->ctx);
		}
		reap_dead(l);
	}
	return 0;
}

void
loop_stop(struct loop *l)
{
	l->running = false;
}

uint64_t
loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
