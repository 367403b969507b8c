package BenchCommon;
# Shared helpers for the IO::AIO contenders: options, clock, the poll loop,
# the small-file manifest and the one-JSON-line result (same keys as common.py).
use strict;
use warnings;
use Getopt::Long qw(GetOptions);
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);
use Exporter qw(import);
our @EXPORT = qw(options now skip wait_readable measure repeat_passes read_manifest);

sub options {
    my %o = (seconds => 5, warmup => 1, depth => 64, @_);
    GetOptions(\%o, map { "$_=s" } keys %o) or die "bad options\n";
    return %o;
}

sub now { clock_gettime(CLOCK_MONOTONIC) }

sub skip {
    print qq({"skipped": "$_[0]"}\n);
    exit 0;
}

# Block until $fd is readable (the IO::AIO poll_fileno).
sub wait_readable {
    my ($fd) = @_;
    my $rin = '';
    vec($rin, $fd, 1) = 1;
    select(my $rout = $rin, undef, undef, undef);
}

sub _threads {
    opendir(my $d, "/proc/self/task") or return undef;
    return scalar grep { !/^\./ } readdir $d;
}

# $run->($budget) returns ($ops, $nbytes). One untimed warm-up call, one timed.
sub measure {
    my ($run, $o) = @_;
    $run->($o->{warmup}) if $o->{warmup} > 0;
    my $t0 = now();
    my ($ops, $nbytes) = $run->($o->{seconds});
    my $dt = now() - $t0;
    my $mbps = $nbytes ? sprintf("%.2f", $nbytes / $dt / 1e6) : "null";
    printf qq({"ops": %d, "seconds": %.6f, "iops": %.1f, "mbps": %s, "threads": %d}\n),
        $ops, $dt, $ops / $dt, $mbps, _threads();
}

sub repeat_passes {
    my ($one_pass, $budget) = @_;
    my $deadline = now() + $budget;
    my $passes = 0;
    do { $one_pass->(); $passes++ } while now() < $deadline;
    return $passes;
}

# Returns (\@paths, \@sizes) from a small_tree's manifest.tsv.
sub read_manifest {
    my ($root) = @_;
    my (@paths, @sizes);
    open my $m, '<', "$root/manifest.tsv" or die "$root/manifest.tsv: $!\n";
    while (<$m>) {
        chomp;
        my ($size, $rel) = split /\t/;
        push @paths, "$root/$rel";
        push @sizes, $size;
    }
    return (\@paths, \@sizes);
}

1;
