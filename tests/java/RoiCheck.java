import ij.gui.Roi;
import ij.io.RoiDecoder;
import ij.process.FloatPolygon;
import java.awt.Point;
import java.awt.Rectangle;
import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.InputStream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;

/** Decodes a RoiSet zip with ImageJ and prints, per ROI, the pixels ImageJ gives it.
 *  One line per ROI, TAB-separated: entry name, type, zPosition, pixels "x,y x,y ..."
 *  (areas: the pixels of Roi.getMask(); lines and points: Roi.getContainedPoints()),
 *  then (read by callers that want them; the first four fields never change):
 *  Roi.getName(), getPosition(), getCPosition(), getTPosition(), the float
 *  vertices "x,y ..." of getFloatPolygon(), and the properties as
 *  key US getProperty(key) pairs separated by RS (US = \u001f, RS = \u001e). */
public class RoiCheck {
    public static void main(String[] args) throws Exception {
        ZipInputStream zip = new ZipInputStream(new FileInputStream(args[0]));
        ZipEntry entry;
        StringBuilder out = new StringBuilder();
        while ((entry = zip.getNextEntry()) != null) {
            byte[] bytes = readAll(zip);
            Roi roi = RoiDecoder.openFromByteArray(bytes);
            String name = entry.getName().replaceAll("\\.roi$", "");
            out.append(name).append('\t').append(roi.getType()).append('\t')
               .append(roi.getZPosition()).append('\t');
            if (roi.isArea()) {
                Rectangle box = roi.getBounds();
                ij.process.ImageProcessor mask = roi.getMask();
                for (int y = 0; y < box.height; y++)
                    for (int x = 0; x < box.width; x++)
                        if (mask == null || mask.get(x, y) != 0)
                            out.append(box.x + x).append(',').append(box.y + y).append(' ');
            } else {
                for (Point p : roi.getContainedPoints())
                    out.append(p.x).append(',').append(p.y).append(' ');
            }
            out.append('\t').append(clean(roi.getName()))
               .append('\t').append(roi.getPosition())
               .append('\t').append(roi.getCPosition())
               .append('\t').append(roi.getTPosition()).append('\t');
            FloatPolygon vertices = roi.getFloatPolygon();
            for (int i = 0; i < vertices.npoints; i++)
                out.append(vertices.xpoints[i]).append(',').append(vertices.ypoints[i]).append(' ');
            out.append('\t');
            String text = roi.getProperties();
            if (text != null) {
                boolean first = true;
                for (String line : text.split("\n")) {
                    int colon = line.indexOf(':');
                    if (colon < 0) continue;
                    String key = line.substring(0, colon).trim();
                    if (!first) out.append('\u001e');
                    out.append(clean(key)).append('\u001f').append(clean(roi.getProperty(key)));
                    first = false;
                }
            }
            out.append('\n');
        }
        System.out.print(out);
    }

    /** A value on one field of one line (null as the empty text). */
    static String clean(String text) {
        return text == null ? "" : text.replaceAll("[\t\n\r\u001e\u001f]", " ");
    }

    static byte[] readAll(InputStream in) throws Exception {
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        byte[] chunk = new byte[65536];
        int n;
        while ((n = in.read(chunk)) > 0) buffer.write(chunk, 0, n);
        return buffer.toByteArray();
    }
}
