/* checkpoint.c: atomic checkpoint directories, rotation, newest-valid load. */
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/util.h"
#include "../io/safetensors.h"
#include "../io/weights.h"

#define CKPT_DIR "checkpoints"
#define MAX_CKPTS 4096

static int remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  struct dirent *e;
  char p[PATH_MAX];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  closedir(d);
  return rmdir(dir);
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* checkpoint names in the run, oldest first (names sort by step) */
static int list_ckpts(const char *run_dir, char **names, int max) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/%s", run_dir, CKPT_DIR);
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < max)
    if (!strncmp(e->d_name, "step-", 5)) names[n++] = xstrdup(e->d_name);
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, cmp_names);
  return n;
}

int ckpt_count(const char *run_dir) {
  char *names[MAX_CKPTS];
  int n = list_ckpts(run_dir, names, MAX_CKPTS);
  for (int i = 0; i < n; i++) free(names[i]);
  return n;
}

int ckpt_save(const char *run_dir, const net *n, const ckpt_tensors *t, int64_t global_step, const char *state_json,
              const char *config_json, const char *classes_json, int keep, const char *protect, char *name_out,
              char *err, size_t errlen) {
  char dir[PATH_MAX], tmp[PATH_MAX], final[PATH_MAX], path[PATH_MAX], name[64];
  snprintf(dir, sizeof dir, "%s/%s", run_dir, CKPT_DIR);
  if (mkdir_p(dir, err, errlen) != 0) return -1;
  snprintf(name, sizeof name, "step-%09lld", (long long)global_step);
  snprintf(tmp, sizeof tmp, "%s/.tmp-%s", dir, name);
  snprintf(final, sizeof final, "%s/%s", dir, name);
  if (path_exists(tmp)) remove_dir(tmp);
  if (mkdir(tmp, 0755) != 0) {
    snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
    return -1;
  }
  char step_s[32];
  snprintf(step_s, sizeof step_s, "%lld", (long long)global_step);
  const char *meta[] = {"rn50.classes_json", classes_json ? classes_json : "[]", "rn50.global_step", step_s, NULL};
  snprintf(path, sizeof path, "%s/model.safetensors", tmp);
  if (weights_save(n, t->params, t->running, t->counts, path, meta, err, errlen) != 0) return -1;
  safet_writer *w = safet_writer_new();
  weights_add(w, n, "momentum.", t->momentum, NULL, NULL);
  if (t->ema_params) weights_add(w, n, "ema.", t->ema_params, t->ema_running, NULL);
  safet_writer_meta(w, "rn50.train_state", state_json);
  safet_writer_meta(w, "rn50.config", config_json);
  safet_writer_meta(w, "rn50.arch", n->arch_name);
  snprintf(path, sizeof path, "%s/state.safetensors", tmp);
  int rc = safet_writer_save(w, path, err, errlen);
  safet_writer_free(w);
  if (rc != 0) return -1;
  if (path_exists(final)) remove_dir(final); /* same step written again (e.g. after a resume) */
  if (rename(tmp, final) != 0) {
    snprintf(err, errlen, "%s: %s", final, strerror(errno));
    return -1;
  }
  if (fsync_parent_dir(final) != 0) {
    snprintf(err, errlen, "%s: fsync of the directory failed", dir);
    return -1;
  }
  if (name_out) snprintf(name_out, 64, "%s", name);
  /* rotation: keep the newest `keep` and the protected one */
  char *names[MAX_CKPTS];
  int k = list_ckpts(run_dir, names, MAX_CKPTS);
  for (int i = 0; i < k; i++) {
    if (i < k - keep && !(protect && !strcmp(names[i], protect))) {
      snprintf(path, sizeof path, "%s/%s", dir, names[i]);
      remove_dir(path);
    }
    free(names[i]);
  }
  return 0;
}

static int load_one(const char *cdir, const net *n, ckpt_tensors *t, char **state_json, char **config_json, char *err,
                    size_t errlen) {
  char path[PATH_MAX];
  safet_file sf;
  snprintf(path, sizeof path, "%s/model.safetensors", cdir);
  if (weights_load(n, path, t->params, t->running, t->counts, err, errlen) != 0) return -1;
  snprintf(path, sizeof path, "%s/state.safetensors", cdir);
  if (safet_open(&sf, path, err, errlen) != 0) return -1;
  int rc = safet_verify_checksum(&sf, err, errlen);
  if (rc == 0) rc = weights_read(n, &sf, "momentum.", 0, t->momentum, NULL, NULL, err, errlen);
  if (rc == 0 && t->ema_params) {
    if (!safet_find(&sf, "ema.fc.weight")) {
      /* the run had no EMA before: start it from the weights */
      memcpy(t->ema_params, t->params, n->n_params * sizeof(float));
      memcpy(t->ema_running, t->running, n->n_running * sizeof(float));
    } else {
      rc = weights_read(n, &sf, "ema.", 0, t->ema_params, t->ema_running, NULL, err, errlen);
    }
  }
  const char *st = safet_meta(&sf, "rn50.train_state"), *cf = safet_meta(&sf, "rn50.config");
  if (rc == 0 && (!st || !cf)) {
    snprintf(err, errlen, "%s: no training state in its metadata", path);
    rc = -1;
  }
  if (rc == 0) {
    *state_json = xstrdup(st);
    *config_json = xstrdup(cf);
  }
  safet_close(&sf);
  return rc;
}

int ckpt_load_latest(const char *run_dir, const net *n, ckpt_tensors *t, char **state_json, char **config_json,
                     char *name_out, char *err, size_t errlen) {
  char *names[MAX_CKPTS];
  int k = list_ckpts(run_dir, names, MAX_CKPTS);
  int result = k ? -1 : 0;
  char first_err[1024] = "";
  for (int i = k - 1; i >= 0 && result != 1; i--) {
    char cdir[PATH_MAX], e[1024];
    snprintf(cdir, sizeof cdir, "%s/%s/%s", run_dir, CKPT_DIR, names[i]);
    if (load_one(cdir, n, t, state_json, config_json, e, sizeof e) == 0) {
      if (name_out) snprintf(name_out, 64, "%s", names[i]);
      result = 1;
    } else {
      warn("checkpoint %s is unreadable (%s)%s", cdir, e, i > 0 ? "; trying the previous one" : "");
      if (!first_err[0]) snprintf(first_err, sizeof first_err, "%s", e);
    }
  }
  if (result == -1) snprintf(err, errlen, "no readable checkpoint in %s/%s (newest: %s)", run_dir, CKPT_DIR, first_err);
  for (int i = 0; i < k; i++) free(names[i]);
  return result;
}
