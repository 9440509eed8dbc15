/* A device's memory as core sees it: how to allocate, free, copy and clear the bytes of a storage on
 * a device other than the host. A backend (cuda/) fills one in and installs it in the context; core
 * never knows which backend it is. Every storage on the device holds a reference, so the backend
 * closes only after the last tensor on it is gone, whatever order Lua frees things in. */
#ifndef HR_DEVICE_H
#define HR_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hr_device_mem {
    void *state;   /* the backend's */
    int index;     /* the device's ordinal (cuda:N) */
    char name[32]; /* "cuda:0", for messages */
    /* Each returns 0, or -1 with a message in err. */
    int (*alloc)(void *state, int64_t nbytes, void **data, char *err, size_t err_size);
    void (*free)(void *state, void *data);
    /* dst_host / src_host: which side is host memory (both false: on the device) */
    int (*copy)(void *state, void *dst, bool dst_host, const void *src, bool src_host, int64_t nbytes, char *err,
                size_t err_size);
    int (*zero)(void *state, void *data, int64_t nbytes, char *err, size_t err_size);
    /* Waits for the device's queued work; reports a fault of an earlier kernel. */
    int (*sync)(void *state, char *err, size_t err_size);
    void (*close)(void *state);
    int64_t refs;  /* storages alive on the device, plus one while the context holds it */
} hr_device_mem;

/* Drops one reference; the last closes the backend. */
void hr_device_mem_release(hr_device_mem *mem);

#endif
