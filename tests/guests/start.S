/* Test guest entry: PVH (32-bit protected mode, paging off, %ebx -> start
 * info) to 64-bit long mode with an identity map of the first 4 GiB, then
 * guest_main(start_info). Its return value goes to the debug-exit port.
 * Also: interrupt stubs, the AP start-up path, and the ring-3 entry. */

#define DEBUG_EXIT_PORT 0xf4

/* Paging and long mode on, from 32-bit protected mode (BSP and APs). */
	.macro LONG_MODE_ON
	mov %cr4, %eax
	or $0x20, %eax			/* PAE */
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx		/* EFER */
	rdmsr
	or $0x100, %eax			/* LME */
	wrmsr
	mov %cr0, %eax
	or $0x80000001, %eax		/* PG, PE */
	mov %eax, %cr0
	.endm

	/* The PVH entry note: Xen, XEN_ELFNOTE_PHYS32_ENTRY. */
	.section .note.pvh, "a", @note
	.align 4
	.long 4, 4, 18
	.asciz "Xen"
	.long pvh_start

	.section .text.start, "ax"
	.code32
	.globl pvh_start
pvh_start:
	cli
	mov %ebx, %esi
	lgdt gdt_ptr
	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	LONG_MODE_ON
	ljmp $0x08, $bsp_long

	.code64
bsp_long:
	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	mov $boot_stack_top, %rsp
	mov %esi, %edi
	call guest_main
	mov %eax, %edi
	.globl guest_exit
guest_exit:
	mov %edi, %eax
	outb %al, $DEBUG_EXIT_PORT
2:	cli
	hlt
	jmp 2b

/* APs: the real-mode trampoline (copied to 0x10000, SIPI vector 0x10) loads
 * the GDT and jumps to ap_pm32 in 32-bit protected mode. */
	.code16
	.globl ap_tramp_start, ap_tramp_end
ap_tramp_start:
	cli
	mov %cs, %ax
	mov %ax, %ds
	lgdtl ap_gdt_ptr - ap_tramp_start
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $0x18, $ap_pm32
	.align 8
ap_gdt_ptr:
	.word gdt_end - gdt - 1
	.long gdt
ap_tramp_end:

	.code32
ap_pm32:
	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	LONG_MODE_ON
	ljmp $0x08, $ap_long

	.code64
ap_long:
	mov $0x10, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	/* Each AP takes the next stack slot. */
	mov $1, %eax
	lock xadd %eax, ap_next
	mov %eax, %edi
	inc %eax
	shl $12, %rax
	lea ap_stacks(%rax), %rsp
	call ap_main
3:	cli
	hlt
	jmp 3b

/* Interrupt stubs: push the vector, save the scratch registers, call
 * irq_dispatch(vector, frame). Exceptions with an error code get it popped. */
	.macro STUB vec, has_err
	.globl isr_\vec
isr_\vec:
	.if \has_err == 0
	push $0
	.endif
	push $\vec
	jmp isr_common
	.endm

	STUB 0,0; STUB 1,0; STUB 2,0; STUB 3,0; STUB 4,0; STUB 5,0; STUB 6,0; STUB 7,0
	STUB 8,1; STUB 9,0; STUB 10,1; STUB 11,1; STUB 12,1; STUB 13,1; STUB 14,1; STUB 15,0
	STUB 16,0; STUB 17,1; STUB 18,0; STUB 19,0; STUB 20,0; STUB 21,0
	STUB 32,0; STUB 36,0; STUB 40,0; STUB 48,0; STUB 128,0; STUB 255,0

isr_common:
	push %rax
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %r8
	push %r9
	push %r10
	push %r11
	mov %rsp, %rsi
	mov 72(%rsp), %rdi		/* vector */
	call irq_dispatch
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rax
	add $16, %rsp			/* vector, error code */
	iretq

/* enter_user(rip, rsp): iretq to ring 3. */
	.globl enter_user
enter_user:
	push $0x2b			/* user data | RPL 3 */
	push %rsi
	push $0x202			/* IF on */
	push $0x33			/* user code | RPL 3 */
	push %rdi
	iretq

	.data
	.align 16
	.globl gdt, tss_desc
gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x10 data */
	.quad 0x00cf9a000000ffff	/* 0x18 32-bit code (APs) */
	.quad 0
	.quad 0x00cff2000000ffff	/* 0x28 user data */
	.quad 0x00affa000000ffff	/* 0x30 user code */
tss_desc:
	.quad 0, 0			/* 0x38 TSS, filled in by tss_load */
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.long gdt

	.globl ap_next
ap_next:
	.long 0

/* Identity map of 4 GiB in 2 MiB pages, user-accessible (the ring-3 test). */
	.align 4096
pml4:
	.quad pdpt + 7
	.fill 511, 8, 0
pdpt:
	.quad pd + 7, pd + 0x1000 + 7, pd + 0x2000 + 7, pd + 0x3000 + 7
	.fill 508, 8, 0
pd:
	.set addr, 0
	.rept 2048
	.quad addr + 0x87
	.set addr, addr + 0x200000
	.endr

	.bss
	.align 4096
	.space 16384
boot_stack_top:
	.globl ap_stacks
	.align 4096
ap_stacks:
	.space 4096 * 65
