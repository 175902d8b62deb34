/* The smallest PVH guest: its first instructions print "X\n" on COM1, then
 * the vCPU halts with interrupts off for good. bench/boot.sh times process
 * start to that first byte (the engine's own start-up cost) and measures the
 * engine's memory while the guest sits halted. */
	.section .note.pvh, "a", @note
	.align 4
	.long 4, 4, 18		/* "Xen", XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long start

	.text
	.code32
	.globl start
start:
	mov $0x3f8, %dx
	mov $'X', %al
	out %al, %dx
	mov $'\n', %al
	out %al, %dx
1:	cli
	hlt
	jmp 1b
