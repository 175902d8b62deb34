/* i8042 keyboard controller: enough of it for a guest to find no keyboard
 * and to reset the machine (command 0xFE, or the output port's reset bit),
 * which Linux does with reboot=k. No keyboard or mouse is attached. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vm/dev/dev.h"
#include "vm/layout.h"
#include "common/util.h"
#include "vm/vm.h"

#define STATUS_OBF    0x01
#define STATUS_SYS    0x04
#define STATUS_CMD    0x08
#define STATUS_AUXOBF 0x20

struct i8042_state {
	uint8_t cmd_byte;
	uint8_t status;
	uint8_t out;         /* output buffer, valid with STATUS_OBF */
	uint8_t pending_cmd; /* command waiting for its data byte, or 0 */
	uint8_t out_port;
	uint8_t pad[3];
};

struct i8042 {
	struct dev dev;
	pthread_mutex_t lock;
	struct i8042_state s;
};

static void i8042_reply(struct i8042_state *s, uint8_t v)
{
	s->out = v;
	s->status |= STATUS_OBF;
}

static void i8042_reset_guest(struct i8042 *k)
{
	vm_request_exit(k->dev.vm, VM_EXIT_REBOOT, 0, "reset through the i8042 keyboard controller");
}

static void i8042_command(struct i8042 *k, uint8_t c)
{
	struct i8042_state *s = &k->s;

	s->status |= STATUS_CMD;
	switch (c) {
	case 0x20: /* read command byte */
		i8042_reply(s, s->cmd_byte);
		break;
	case 0x60: /* write command byte */
	case 0xd1: /* write output port */
	case 0xd2: /* write keyboard output buffer */
	case 0xd3: /* write aux output buffer */
	case 0xd4: /* write to aux device */
		s->pending_cmd = c;
		break;
	case 0xa7: /* disable aux */
		s->cmd_byte |= 0x20;
		break;
	case 0xa8: /* enable aux */
		s->cmd_byte &= ~0x20;
		break;
	case 0xa9: /* aux interface test: not attached */
		i8042_reply(s, 0xff);
		break;
	case 0xaa: /* self test */
		s->status |= STATUS_SYS;
		i8042_reply(s, 0x55);
		break;
	case 0xab: /* keyboard interface test */
		i8042_reply(s, 0x00);
		break;
	case 0xad: /* disable keyboard */
		s->cmd_byte |= 0x10;
		break;
	case 0xae: /* enable keyboard */
		s->cmd_byte &= ~0x10;
		break;
	case 0xd0: /* read output port */
		i8042_reply(s, s->out_port);
		break;
	case 0xfe: /* pulse the reset line */
		i8042_reset_guest(k);
		break;
	default:
		break;
	}
}

static void i8042_data(struct i8042 *k, uint8_t v)
{
	struct i8042_state *s = &k->s;
	uint8_t c = s->pending_cmd;

	s->status &= ~STATUS_CMD;
	s->pending_cmd = 0;
	switch (c) {
	case 0x60:
		s->cmd_byte = v;
		break;
	case 0xd1:
		s->out_port = v;
		if (!(v & 1)) /* bit 0 low holds the CPU in reset */
			i8042_reset_guest(k);
		break;
	case 0xd2:
		i8042_reply(s, v);
		break;
	default:
		/* Bytes for the keyboard or mouse: nothing is attached, so they
		 * get no answer and the guest's driver times out. */
		break;
	}
}

static void i8042_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct i8042 *k = opaque;
	uint8_t v;

	pthread_mutex_lock(&k->lock);
	if (off == 0) {
		v = k->s.out;
		k->s.status &= ~(STATUS_OBF | STATUS_AUXOBF);
	} else {
		v = k->s.status;
	}
	pthread_mutex_unlock(&k->lock);
	memset(data, 0, len);
	*(uint8_t *)data = v;
}

static void i8042_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct i8042 *k = opaque;
	uint8_t v = *(const uint8_t *)data;

	(void)len;
	pthread_mutex_lock(&k->lock);
	if (off == 0)
		i8042_data(k, v);
	else
		i8042_command(k, v);
	pthread_mutex_unlock(&k->lock);
}

static void i8042_power_on(struct i8042_state *s)
{
	memset(s, 0, sizeof(*s));
	s->cmd_byte = 0x30; /* keyboard and aux disabled until the guest enables them */
	s->status = STATUS_SYS;
	s->out_port = 0x01; /* not in reset */
}

static void i8042_reset(struct dev *d)
{
	struct i8042 *k = (struct i8042 *)d;

	pthread_mutex_lock(&k->lock);
	i8042_power_on(&k->s);
	pthread_mutex_unlock(&k->lock);
}

static void i8042_save(struct dev *d, void *state)
{
	struct i8042 *k = (struct i8042 *)d;

	pthread_mutex_lock(&k->lock);
	memcpy(state, &k->s, sizeof(k->s));
	pthread_mutex_unlock(&k->lock);
}

static int i8042_restore(struct dev *d, const void *state, struct tv_err *err)
{
	struct i8042 *k = (struct i8042 *)d;

	(void)err;
	pthread_mutex_lock(&k->lock);
	memcpy(&k->s, state, sizeof(k->s));
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static void i8042_destroy(struct dev *d)
{
	struct i8042 *k = (struct i8042 *)d;

	pthread_mutex_destroy(&k->lock);
	free(k);
}

static const struct dev_ops i8042_ops = {
	.reset = i8042_reset,
	.state_size = sizeof(struct i8042_state),
	.save = i8042_save,
	.restore = i8042_restore,
	.destroy = i8042_destroy,
};

/* Ports 0x60 and 0x64 are not adjacent: two ranges, told apart by ops. */
static void i8042_data_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	i8042_read(opaque, 0, data, len);
}

static void i8042_data_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	i8042_write(opaque, 0, data, len);
}

static void i8042_cmd_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	i8042_read(opaque, 1, data, len);
}

static void i8042_cmd_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	i8042_write(opaque, 1, data, len);
}

static const struct dev_io_ops i8042_io = {.read = i8042_data_read, .write = i8042_data_write};
static const struct dev_io_ops i8042_cmd_io = {.read = i8042_cmd_read, .write = i8042_cmd_write};

int i8042_create(struct vm *vm, const struct vm_config *cfg, struct tv_err *err)
{
	struct i8042 *k = xcalloc(1, sizeof(*k));

	(void)cfg;
	k->dev.name = "i8042";
	k->dev.ops = &i8042_ops;
	pthread_mutex_init(&k->lock, NULL);
	i8042_power_on(&k->s);
	dev_register(vm, &k->dev);
	if (dev_add_pio(vm, &k->dev, LAYOUT_I8042_DATA, 1, &i8042_io, k, err) < 0)
		return -1;
	return dev_add_pio(vm, &k->dev, LAYOUT_I8042_CMD, 1, &i8042_cmd_io, k, err);
}
