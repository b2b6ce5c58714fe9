# The jail stub's interpreter (docs/adr/0016), x86_64, no libc. Assembled with
#   as --64 -o jail.o JailStub.s && objcopy -O binary -j .text jail.o jail.bin
# into JailStub.Code (JailStubTests re-assembles this file and compares).
#
# DATA (0x601000): [0] address of the steps, [8] their count, [16] the error fd.
# A step (72 bytes): nr, flags, store address, six arguments. Flags bit i (0-5): argument i is
# read from the address it holds; bit 8: a failure is not fatal (the -errno is stored).
# nr -1: clone(arg0) without a new stack; the child goes on, the parent jumps to step arg1.
# nr -2: the reaper (arg0 main pid, arg1 status fd), see JailProgram.Reap; it SIGKILLs the rest of
#        the namespace (kill -1) only inside a pid namespace: when it is PID 1 of one, or when its
#        parent is outside it (getppid() == 0: a subreaper joined into a namespace).
# A fatal failure writes {1, step, errno, 0} (four u32) to the error fd and exits 127.
.intel_syntax noprefix
.set DATA, 0x601000
.set STEP, 72
.globl _start
_start:
    mov rbx, [DATA]
    xor r12d, r12d
next:
    cmp r12, [DATA+8]
    jae ran_off
    imul rbp, r12, STEP
    add rbp, rbx
    mov rcx, [rbp+8]
    mov rdi, [rbp+24]
    test cl, 1
    jz 1f
    mov rdi, [rdi]
1:  mov rsi, [rbp+32]
    test cl, 2
    jz 1f
    mov rsi, [rsi]
1:  mov rdx, [rbp+40]
    test cl, 4
    jz 1f
    mov rdx, [rdx]
1:  mov r10, [rbp+48]
    test cl, 8
    jz 1f
    mov r10, [r10]
1:  mov r8, [rbp+56]
    test cl, 16
    jz 1f
    mov r8, [r8]
1:  mov r9, [rbp+64]
    test cl, 32
    jz 1f
    mov r9, [r9]
1:  mov rax, [rbp]
    cmp rax, -1
    je fork
    cmp rax, -2
    je reap
    syscall
    cmp rax, -4095
    jae failed
stored:
    mov rdx, [rbp+16]
    test rdx, rdx
    jz 1f
    mov [rdx], rax
1:  inc r12
    jmp next
failed:
    test byte ptr [rbp+9], 1
    jnz stored
    jmp fail
fork:
    mov eax, 56
    xor esi, esi
    xor edx, edx
    xor r10d, r10d
    xor r8d, r8d
    syscall
    cmp rax, -4095
    jae fail
    mov rdx, [rbp+16]
    test rdx, rdx
    jz 1f
    mov [rdx], rax
1:  test rax, rax
    jz 2f
    mov r12, [rbp+32]
    jmp next
2:  inc r12
    jmp next
reap:
    mov r13, rdi
    mov r14, rsi
    xor r15d, r15d
    xor ebx, ebx
    mov eax, 39
    syscall
    mov rbp, rax
    cmp rax, 1
    je 1f
    mov eax, 110
    syscall
    xor ebp, ebp
    test rax, rax
    jnz 1f
    mov ebp, 1
1:
    sub rsp, 32
    mov qword ptr [rsp], 0
rloop:
    mov eax, 61
    mov rdi, -1
    lea rsi, [rsp+8]
    mov edx, 0x40000000
    xor r10d, r10d
    syscall
    cmp rax, -4
    je rloop
    test rax, rax
    js rdone
    cmp rax, r13
    jne rother
    mov eax, [rsp+8]
    mov [rsp], eax
    mov r15d, 1
    cmp rbp, 1
    jne rloop
    mov eax, 62
    mov rdi, -1
    mov esi, 9
    syscall
    jmp rloop
rother:
    test r15d, r15d
    jz rloop
    inc ebx
    jmp rloop
rdone:
    mov [rsp+4], ebx
    mov [rsp+8], r15d
    mov dword ptr [rsp+12], 0x4854524a
    mov eax, 1
    mov rdi, r14
    mov rsi, rsp
    mov edx, 16
    syscall
    mov edi, 1
    sub edi, r15d
    mov eax, 231
    syscall
    ud2
ran_off:
    mov edi, 126
    mov eax, 231
    syscall
    ud2
fail:
    neg rax
    sub rsp, 16
    mov dword ptr [rsp], 1
    mov [rsp+4], r12d
    mov [rsp+8], eax
    mov dword ptr [rsp+12], 0
    mov eax, 1
    mov rdi, [DATA+16]
    mov rsi, rsp
    mov edx, 16
    syscall
    mov edi, 127
    mov eax, 231
    syscall
    ud2
