/*
 * Host runner for the nostd-check static library (see scripts/nostd-check.sh).
 *
 * Linked with the library alone (plus the C library for mem*), it runs the checks twice and
 * prints the figures as key=value pairs. Built with -DZT_BASELINE it calls nothing from the
 * library, so the linker takes nothing from it: the difference in section sizes between the
 * two executables is the code reachable from the library's entry points.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef ZT_BASELINE
extern uint32_t zt_check_run(void);
extern size_t zt_check_peak_heap(void);
extern size_t zt_check_heap_in_use(void);
extern size_t zt_check_arena_high_water(void);
extern size_t zt_check_alloc_count(void);
extern size_t zt_check_arena_size(void);
extern uint32_t zt_check_features(void);
extern size_t zt_check_device_session_peak_heap(void);
extern size_t zt_check_device_request_len(void);
extern size_t zt_check_joiner_peak_heap(void);
extern size_t zt_check_sponsor_peak_heap(void);
extern size_t zt_check_dns_tunnel_peak_heap(void);
extern size_t zt_check_ble_link_peak_heap(void);

/*
 * On the host, core and alloc come precompiled with panic=unwind, so their code names the
 * personality routine that std would define (rust-lang/rust#106864). With panic=abort nothing
 * unwinds and it is never called; on a bare-metal target core is built with panic=abort and
 * names no personality routine at all. A stub that aborts satisfies the host linker.
 */
void rust_eh_personality(void) { abort(); }
#else
/* Same shape as the real calls, so main() is the same size in both builds. */
__attribute__((noinline)) static uint32_t zt_check_run(void) { return 0; }
__attribute__((noinline)) static size_t zt_check_peak_heap(void) { return 0; }
__attribute__((noinline)) static size_t zt_check_heap_in_use(void) { return 0; }
__attribute__((noinline)) static size_t zt_check_arena_high_water(void) { return 0; }
__attribute__((noinline)) static size_t zt_check_alloc_count(void) { return 0; }
__attribute__((noinline)) static size_t zt_check_arena_size(void) { return 0; }
__attribute__((noinline)) static uint32_t zt_check_features(void) { return 0; }
__attribute__((noinline)) static size_t zt_check_device_session_peak_heap(void) { return 0; }
__attribute__((noinline)) static size_t zt_check_device_request_len(void) { return 0; }
__attribute__((noinline)) static size_t zt_check_joiner_peak_heap(void) { return 0; }
__attribute__((noinline)) static size_t zt_check_sponsor_peak_heap(void) { return 0; }
__attribute__((noinline)) static size_t zt_check_dns_tunnel_peak_heap(void) { return 0; }
__attribute__((noinline)) static size_t zt_check_ble_link_peak_heap(void) { return 0; }
#endif

int main(void) {
    uint32_t status1 = zt_check_run();
    size_t peak1 = zt_check_peak_heap();
    size_t allocs1 = zt_check_alloc_count();
    size_t session1 = zt_check_device_session_peak_heap();
    size_t joiner1 = zt_check_joiner_peak_heap();
    size_t sponsor1 = zt_check_sponsor_peak_heap();
    size_t dns1 = zt_check_dns_tunnel_peak_heap();
    size_t ble1 = zt_check_ble_link_peak_heap();
    /* A second run must give the same figures: the arena is reused and nothing leaks. */
    uint32_t status = zt_check_run();
    size_t peak = zt_check_peak_heap();
    size_t allocs = zt_check_alloc_count();
    size_t session = zt_check_device_session_peak_heap();
    size_t joiner = zt_check_joiner_peak_heap();
    size_t sponsor = zt_check_sponsor_peak_heap();
    size_t dns = zt_check_dns_tunnel_peak_heap();
    size_t ble = zt_check_ble_link_peak_heap();
    printf("status=%u peak_heap=%zu heap_in_use=%zu arena_high_water=%zu arena_size=%zu "
           "allocs=%zu features=%u device_session_peak_heap=%zu device_request_len=%zu "
           "joiner_peak_heap=%zu sponsor_peak_heap=%zu dns_tunnel_peak_heap=%zu "
           "ble_link_peak_heap=%zu\n",
           (unsigned)status, peak, zt_check_heap_in_use(), zt_check_arena_high_water(),
           zt_check_arena_size(), allocs, (unsigned)zt_check_features(), session,
           zt_check_device_request_len(), joiner, sponsor, dns, ble);
    if (status1 != 0 || status != 0) {
        fprintf(stderr, "runner: zt_check_run failed: status %u then %u\n", (unsigned)status1,
                (unsigned)status);
        return 1;
    }
    if (peak1 != peak || allocs1 != allocs || session1 != session || joiner1 != joiner ||
        sponsor1 != sponsor || dns1 != dns || ble1 != ble) {
        fprintf(stderr,
                "runner: runs differ: peak %zu then %zu, allocations %zu then %zu, device "
                "session peak %zu then %zu, joiner peak %zu then %zu, sponsor peak %zu then %zu, "
                "DNS tunnel peak %zu then %zu, BLE link peak %zu then %zu\n",
                peak1, peak, allocs1, allocs, session1, session, joiner1, joiner, sponsor1,
                sponsor, dns1, dns, ble1, ble);
        return 1;
    }
    return 0;
}
