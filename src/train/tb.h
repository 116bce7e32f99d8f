/* tb.h: TensorBoard event files, so `tensorboard --logdir RUN` shows rn50's
 * loss, lr, accuracy and throughput curves without TensorFlow or protobuf.
 *
 * A file is a sequence of TFRecords (uint64 length, masked CRC-32C of the
 * length, data, masked CRC-32C of the data; mask(c) = ((c >> 15) | (c << 17))
 * + 0xa282ead8), each holding one hand-encoded protobuf Event:
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3;
 *             Summary summary = 5; SessionLog session_log = 6; }
 *   Summary { repeated Value value = 1; }
 *   Value   { string tag = 1; float simple_value = 2; }
 * The first record is the file_version event "brain.Event:2". As proto3 does,
 * a zero step is left out.
 *
 * Logging must never stop training: write errors are remembered (tb_error)
 * instead of being fatal. */
#ifndef RN50_TB_H
#define RN50_TB_H

#include <stddef.h>
#include <stdint.h>

#include "../core/json.h"

typedef struct tb_writer tb_writer;

/* Creates dir (mkdir -p) and dir/events.out.tfevents.<time>.<host>.<pid>.rn50
 * (a new file each call), and writes the file_version event. NULL with err
 * filled on failure. */
tb_writer *tb_open(const char *dir, char *err, size_t errlen);
/* One Event{wall_time, step, Summary{Value{tag, simple_value}}}; the value is
 * stored as float32. */
void tb_scalar(tb_writer *w, const char *tag, double value, int64_t step);
/* Marks a restart at step: an Event{session_log: START}. TensorBoard's event
 * accumulator then drops the points at steps >= step logged before it, so a
 * resumed run shows one curve, not two overlapping ones. Call right after
 * tb_open when resuming. */
void tb_session_start(tb_writer *w, int64_t step);
/* Pushes buffered records to the file (no fsync: a torn last record after a
 * crash is tolerated by TensorBoard). */
void tb_flush(tb_writer *w);
/* Flushes, closes and frees (NULL is fine). */
void tb_close(tb_writer *w);
/* The file's path. */
const char *tb_path(const tb_writer *w);
/* The first write error ("path: reason"), or NULL. */
const char *tb_error(const tb_writer *w);

/* The encoders tb_* use, exposed for tests. Each appends to out. */
uint32_t tb_masked_crc(const void *data, size_t len);
void tb_frame_record(strbuf *out, const void *data, size_t len);
void tb_encode_file_version(strbuf *out, double wall_time);
void tb_encode_scalar(strbuf *out, double wall_time, int64_t step, const char *tag, float value);
void tb_encode_session_start(strbuf *out, double wall_time, int64_t step);

#endif
