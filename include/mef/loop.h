/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The one event loop: epoll over file descriptors (libcoap's epoll fd, each
 * MHD daemon's epoll fd, signalfd, timerfds), periodic timers on timerfd,
 * signals on signalfd, and "prepare" hooks run before each wait that may
 * lower the wait timeout and "after" hooks run after each wake (MHD needs
 * MHD_run after every wait). Single-threaded; an object, not a singleton.
 */
#ifndef MEF_LOOP_H
#define MEF_LOOP_H

#include <stdint.h>

struct loop;

typedef void (*loop_fd_cb)(struct loop *l, int fd, uint32_t events, void *ctx);
typedef void (*loop_timer_cb)(struct loop *l, void *ctx);
typedef void (*loop_signal_cb)(struct loop *l, int signo, void *ctx);
/* Returns the longest the loop may sleep, in ms (-1 = no limit). */
typedef int (*loop_prepare_cb)(struct loop *l, void *ctx);
typedef void (*loop_after_cb)(struct loop *l, void *ctx);

struct loop *loop_new(void);
/* Frees the loop (closes its timer and signal fds, not registered fds); accepts NULL. */
struct loop *loop_free(struct loop *l);

/* EPOLLIN etc. 0 or MEF_EIO / MEF_ENOMEM. */
int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_cb cb, void *ctx);
int loop_del_fd(struct loop *l, int fd);

/* Periodic timer (interval_ms 0 = one-shot). *ret_id identifies it for loop_del_timer. */
int loop_add_timer(struct loop *l, uint64_t first_ms, uint64_t interval_ms, loop_timer_cb cb,
		   void *ctx, int *ret_id);
int loop_del_timer(struct loop *l, int id);

/* Blocks the signals and delivers them through a signalfd. */
int loop_add_signals(struct loop *l, const int *signals, int n, loop_signal_cb cb, void *ctx);

int loop_add_prepare(struct loop *l, loop_prepare_cb cb, void *ctx);
int loop_add_after(struct loop *l, loop_after_cb cb, void *ctx);
int loop_del_hooks(struct loop *l, void *ctx); /* removes every prepare/after hook with this ctx */

/* Runs until loop_stop. 0 or MEF_EIO. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

/* Monotonic milliseconds. */
uint64_t loop_now_ms(void);

#endif
