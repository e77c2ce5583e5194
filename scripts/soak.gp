# Renders the soak chart from scripts/soak.sh's samples (docs/data/soak_rss.tsv):
#   gnuplot -e "infile='docs/data/soak_rss.tsv'; outfile='docs/images/soak_rss.png'; \
#               base_frame=10000; base_kib=127000; tolerance_kib=1024" scripts/soak.gp
# Top: resident set size minus the RSS at frame base_frame (KiB), with the pass limit
# (+tolerance_kib) dashed. Bottom: p50 and p99 frame time of each window (ms, log scale).
if (!exists("infile")) infile = "docs/data/soak_rss.tsv"
if (!exists("outfile")) outfile = "docs/images/soak_rss.png"
if (!exists("subtitle")) subtitle = ""
if (!exists("base_frame")) base_frame = 10000
if (!exists("base_kib")) base_kib = 0
if (!exists("tolerance_kib")) tolerance_kib = 1024

set terminal pngcairo size 900,620 font "sans,10"
set output outfile
set datafile separator "\t"
set datafile commentschars "#"
set multiplot layout 2,1 title "game\\_frame soak: resident set size and frame times per window\n{/*0.8 ".subtitle."}"
set grid ytics xtics
set lmargin 12  # the same for both panels, so their x axes line up
set key top left
set xrange [0:*]
set format x ""
set ylabel "RSS − RSS at frame ".base_frame." (KiB)"
# At least +-2 x the tolerance, more when the samples go further.
stats infile using ($2 - base_kib) nooutput
low = STATS_min < -2 * tolerance_kib ? 1.1 * STATS_min : -2 * tolerance_kib
high = STATS_max > 2 * tolerance_kib ? 1.1 * STATS_max : 2 * tolerance_kib
set yrange [low:high]
set arrow 1 from graph 0, first tolerance_kib to graph 1, first tolerance_kib nohead dashtype 2
set label 1 sprintf("limit at the end: +%d KiB (RSS at frame %d: %.1f MiB)", tolerance_kib, \
  base_frame, base_kib / 1024.0) at graph 0.02, first tolerance_kib offset 0,0.7
set arrow 2 from first base_frame / 1000.0, graph 0 to first base_frame / 1000.0, graph 1 nohead dashtype 3
plot infile using ($1 / 1000.0):($2 - base_kib) with linespoints pointtype 7 pointsize 0.4 \
  linewidth 2 title "RSS (KiB, relative)"
unset arrow
unset label
set format x "%g"
set xlabel "frame (thousands)"
set ylabel "frame time (ms, log scale)"
set logscale y
set yrange [*:*]
plot infile using ($1 / 1000.0):3 with lines linewidth 2 title "p50 of the window", \
     infile using ($1 / 1000.0):4 with lines title "p99 of the window"
unset multiplot
