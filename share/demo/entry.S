/* The demo guest's entry points: the PVH entry (32-bit protected mode, paging off,
 * %ebx -> hvm_start_info), the long-mode switch, the application processors' real-mode
 * trampoline, the interrupt stubs and the CPL 3 round trip.
 *
 * Page tables and the GDT are built by the assembler, not at run time: code at CPL 0 is
 * slow to run under emulation, and a table in the image costs nothing to "fill". */

#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA 0x1b
#define SEL_UCODE 0x23
#define MAX_CPUS 64
#define KSTACK 8192

/* ELF note read by PVH loaders: XEN_ELFNOTE_PHYS32_ENTRY (18), owner "Xen".  The
 * descriptor is 8 bytes in an ELF64 file, as Linux and QEMU have it. */
	.pushsection .note.Xen, "a", @note
	.balign 4
	.long 4, 8, 18
	.asciz "Xen"
	.balign 4
	.quad pvh_entry
	.balign 4
	.popsection

	.section .text.entry, "ax"
	.code32
	.globl pvh_entry
pvh_entry:
	cli
	cld
	movl %ebx, start_info_paddr
	lgdt gdt_ptr
	movl $pml4, %eax
	movl %eax, %cr3
	movl %cr4, %eax
	orl $0x20, %eax			/* PAE */
	movl %eax, %cr4
	movl $0xc0000080, %ecx		/* EFER */
	rdmsr
	orl $0x100, %eax		/* LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80010001, %eax		/* PG | WP | PE */
	movl %eax, %cr0
	ljmp $SEL_KCODE, $long_entry

	.code64
long_entry:
	movw $SEL_KDATA, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	xorl %eax, %eax
	movw %ax, %fs
	movw %ax, %gs
	leaq kstacks + KSTACK(%rip), %rsp
	/* The loader hands over zeroed memory, but a reboot may reuse ours. */
	leaq __bss_start(%rip), %rdi
	leaq __bss_end(%rip), %rcx
	subq %rdi, %rcx
	shrq $3, %rcx
	rep stosq
	movl start_info_paddr(%rip), %edi
	call kmain
1:	cli
	hlt
	jmp 1b

/* Application processors: started by INIT-SIPI-SIPI at the page this code is copied
 * to, in real mode with %cs = page >> 4.  Goes straight to long mode; the data it needs
 * are link-time addresses in the image above 1 MiB, so the copy needs no patching. */
	.code16
	.globl ap_trampoline_start, ap_trampoline_end
ap_trampoline_start:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	movl $0x20, %eax
	movl %eax, %cr4
	movl (ap_tramp_cr3 - ap_trampoline_start), %eax
	movl %eax, %cr3
	movl $0xc0000080, %ecx
	rdmsr
	orl $0x100, %eax
	wrmsr
	lgdtl (ap_tramp_gdt - ap_trampoline_start)
	movl %cr0, %eax
	orl $0x80010001, %eax
	movl %eax, %cr0
	ljmpl *(ap_tramp_jump - ap_trampoline_start)
	.balign 8
ap_tramp_cr3:
	.long pml4
ap_tramp_jump:
	.long ap_entry64
	.word SEL_KCODE
ap_tramp_gdt:
	.word gdt_end - gdt - 1
	.long gdt
ap_trampoline_end:

	.code64
ap_entry64:
	movw $SEL_KDATA, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	xorl %eax, %eax
	movw %ax, %fs
	movw %ax, %gs
	movl $1, %eax
	lock xaddl %eax, ap_next_index(%rip)
	cmpl $MAX_CPUS, %eax
	jae 2f
	movl %eax, %edi
	leal 1(%eax), %eax
	shlq $13, %rax			/* KSTACK */
	leaq kstacks(%rip), %rsp
	addq %rax, %rsp
	call ap_main
2:	cli
	hlt
	jmp 2b

/* user_run(fn, arg, user_stack_top, kernel_slot): enters fn(arg) at CPL 3.  The kernel
 * stack pointer is kept in *kernel_slot, which is the TSS's RSP0: the CPU pushes its
 * interrupt frame just below it, so the slot survives and the way back finds it there. */
	.globl user_run
user_run:
	pushq %rbx
	pushq %rbp
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, (%rcx)
	leaq user_exit(%rip), %rax
	movq %rax, -8(%rdx)
	subq $8, %rdx
	pushq $SEL_UDATA
	pushq %rdx
	pushq $0x202			/* IF: the timer keeps ticking */
	pushq $SEL_UCODE
	pushq %rdi
	movq %rsi, %rdi
	xorl %ebx, %ebx
	xorl %ebp, %ebp
	iretq

/* Where a CPL 3 function returns to: back to the kernel with its result in %rax.  The
 * way down is an invalid-opcode exception, not a software interrupt: nested hypervisors
 * that emulate CPL 0 do not all emulate `int n`, while every one delivers exceptions. */
user_exit:
	ud2

/* #UD: the CPL 3 return when it comes from user_exit, else an exception like any other. */
	.globl isr_ud
isr_ud:
	testb $3, 8(%rsp)		/* CS of the interrupted code */
	jz 4f
	cmpq $user_exit, (%rsp)		/* RIP */
	jne 4f
	movq 40(%rsp), %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbp
	popq %rbx
	ret

/* Hardware interrupts: save what the C calling convention lets the callee clobber. */
.macro IRQ name, handler
	.globl \name
\name:
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	cld
	call \handler
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rax
	iretq
.endm
4:	pushq $0
	pushq $6
	jmp exc_common

	IRQ isr_timer, timer_irq
	IRQ isr_serial, serial_irq
	IRQ isr_sci, sci_irq
	IRQ isr_virtio, virtio_irq

	.globl isr_spurious
isr_spurious:
	iretq

/* Exceptions: one stub per vector pushes the vector (and a zero where the CPU pushes no
 * error code), then the common path hands the frame to C, which reports and stops. */
.macro EXC vec, has_err
	.balign 16
	.if \has_err == 0
	pushq $0
	.endif
	pushq $\vec
	jmp exc_common
.endm
	.balign 16
	.globl exc_stubs
exc_stubs:
	EXC 0,0
	EXC 1,0
	EXC 2,0
	EXC 3,0
	EXC 4,0
	EXC 5,0
	EXC 6,0
	EXC 7,0
	EXC 8,1
	EXC 9,0
	EXC 10,1
	EXC 11,1
	EXC 12,1
	EXC 13,1
	EXC 14,1
	EXC 15,0
	EXC 16,0
	EXC 17,1
	EXC 18,0
	EXC 19,0
	EXC 20,0
	EXC 21,1
	EXC 22,0
	EXC 23,0
	EXC 24,0
	EXC 25,0
	EXC 26,0
	EXC 27,0
	EXC 28,0
	EXC 29,1
	EXC 30,1
	EXC 31,0
exc_common:
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rbx
	pushq %rbp
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	cld
	call exception_handler
3:	cli
	hlt
	jmp 3b

	.data
	.balign 16
	.globl gdt, gdt_end
/* Kernel code/data, user data/code, then a 16-byte TSS descriptor per CPU (filled in
 * by cpu_load_tables). */
gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08 kernel code, 64-bit */
	.quad 0x00cf92000000ffff	/* 0x10 kernel data */
	.quad 0x00cff2000000ffff	/* 0x18 user data */
	.quad 0x00affa000000ffff	/* 0x20 user code, 64-bit */
	.fill MAX_CPUS * 2, 8, 0
gdt_end:
	.balign 8
	.word 0
gdt_ptr:
	.word gdt_end - gdt - 1
	.quad gdt

	.globl ap_next_index
ap_next_index:
	.long 1
start_info_paddr:
	.long 0

/* Identity map of the low 4 GiB in 2 MiB pages, user-accessible (CPL 3 work runs in
 * the same address space); the top GiB (MMIO: LAPIC, IOAPIC, PCI BARs) uncached. */
	.balign 4096
	.globl pml4, pdpt, pd
pml4:
	.quad pdpt + 0x7
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x7
	.quad pd + 0x1000 + 0x7
	.quad pd + 0x2000 + 0x7
	.quad pd + 0x3000 + 0x7
	.fill 508, 8, 0
pd:
	.set i, 0
	.rept 1536
	.quad (i << 21) | 0x87
	.set i, i + 1
	.endr
	.rept 512
	.quad (i << 21) | 0x9f
	.set i, i + 1
	.endr

	.section .noinit, "aw", @nobits
	.balign 4096
	.globl kstacks
kstacks:
	.skip KSTACK * MAX_CPUS
	.balign 4096
	.globl istacks, ustacks
istacks:			/* RSP0 per CPU: interrupts taken at CPL 3 */
	.skip 4096 * MAX_CPUS
ustacks:			/* CPL 3 stacks */
	.skip 4096 * MAX_CPUS
