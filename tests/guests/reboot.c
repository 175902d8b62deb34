/* Reboot through the i8042: command 0xFE pulses the CPU reset line. */
#include "guest.h"

int guest_main(struct hvm_start_info *si)
{
	puts_serial("reboot guest: booted\n");
	while (inb(0x64) & 0x02) /* input buffer full */
		pause();
	outb(0x64, 0xfe);
	for (int i = 0; i < 1000; i++)
		pause();
	puts_serial("reboot guest: still running after the reset command\n");
	return 1;
}
